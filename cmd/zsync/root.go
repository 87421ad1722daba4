package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zsync/zsync/config"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "zsync",
		Short:         "Keep Limio subscriptions in sync with Zuora",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "configuration file (default ./zsync.yaml when present)")
	root.AddCommand(newServeCmd(), newWorkCmd(), newDevCmd(), newSandboxCmd())
	root.AddCommand(newPlanCmd(), newStatusCmd())
	root.AddCommand(newResyncCmd(), newAuditCmd())
	return root
}

// loadConfig reads the configuration for cmd and validates what it needs.
func loadConfig(cmd *cobra.Command, need config.Need) (*config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	flags := pflag.NewFlagSet("all", pflag.ContinueOnError)
	flags.AddFlagSet(cmd.Flags())
	flags.AddFlagSet(cmd.InheritedFlags())
	c, err := config.Load(file, flags)
	if err != nil {
		return nil, usageError{err}
	}
	if err := c.Validate(need); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
