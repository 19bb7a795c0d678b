package node

import (
	"bytes"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// gossipLog turns memberlist's log lines ("2006/01/02 15:04:05 [WARN]
// memberlist: ...") into zap entries at their own level, so its per-probe
// DEBUG chatter stays out of an info-level log.
type gossipLog struct{ log *zap.Logger }

var gossipLevels = []struct {
	tag   []byte
	level zapcore.Level
}{
	{[]byte("[DEBUG] "), zapcore.DebugLevel},
	{[]byte("[INFO] "), zapcore.InfoLevel},
	{[]byte("[WARN] "), zapcore.WarnLevel},
	{[]byte("[ERR] "), zapcore.ErrorLevel},
	{[]byte("[ERROR] "), zapcore.ErrorLevel},
}

func (g gossipLog) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg, level := bytes.TrimSpace(line), zapcore.InfoLevel
		for _, l := range gossipLevels {
			if i := bytes.Index(msg, l.tag); i >= 0 {
				msg, level = msg[i+len(l.tag):], l.level
				break
			}
		}
		if ce := g.log.Check(level, string(msg)); ce != nil {
			ce.Write()
		}
	}
	return len(p), nil
}
