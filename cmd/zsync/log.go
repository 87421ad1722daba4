package main

import (
	"go.uber.org/zap"

	"github.com/zsync/zsync/config"
	"github.com/zsync/zsync/internal/logging"
)

// newLogger builds the one zap logger of the process; components get it (or a
// Named child) passed in.
func newLogger(c config.Log) (*zap.Logger, error) {
	return logging.New(c.Level, c.Format, nil)
}
