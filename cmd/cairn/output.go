package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// outputFlag adds -o/--output to a command: text for people, json for
// scripts (DESIGN section 11 fixes the json shapes).
func outputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", "text", "output format: text or json")
}

func checkOutput(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("invalid argument: -o %q: want text or json", format)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

// oneLine keeps an error to one line on stderr, as scripts expect.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// contextWithTimeout bounds a command so the CLI never hangs on a node that
// does not answer.
func contextWithTimeout(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}
