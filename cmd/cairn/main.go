// Command cairn is the one binary of cairn: the server, a local development
// cluster, and the data and admin commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "cairn: %s\n", oneLine(err))
		stop()
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "cairn is a leaderless, Dynamo-style key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newDevCommand())
	root.AddCommand(newPutCommand(), newGetCommand(), newDeleteCommand())
	root.AddCommand(newMembersCommand(), newRingCommand(), newStatusCommand(), newHintsCommand(), newTransfersCommand(), newJoinCommand(), newLeaveCommand(), newReplaceCommand(), newPlanCommand(), newBucketCommand(), newCounterCommand(), newSetCommand(), newAAECommand(), newDebugCommand())
	root.AddCommand(newBenchCommand())
	root.AddCommand(newRemoveCommand())
	root.AddCommand(newCertCommand(), newKeyringCommand(), newUserCommand())
	return root
}
