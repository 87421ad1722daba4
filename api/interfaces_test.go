package api

import (
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
)

// The concrete types cmd wires in satisfy the interfaces declared here.
var (
	_ Enqueuer = (*worker.Enqueuer)(nil)
	_ Outcomes = (*worker.OutcomeStore)(nil)
	_ Planner  = (*syncer.Syncer)(nil)
)
