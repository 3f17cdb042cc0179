package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitBadInput = 2 // config or usage error
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

// loader loads the config file --config names; a config that does not load exits 2.
type loader func() (*config.Config, error)

// then is a command's run that needs the config: it loads it first.
func (load loader) then(run func(cfg *config.Config) error) func(*cobra.Command) error {
	return func(*cobra.Command) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		return run(cfg)
	}
}

// command is a subcommand that takes no arguments.
func command(use, short string, run func(cmd *cobra.Command) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd) }}
}

// Run executes the CLI with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfgPath string
	load := loader(func() (*config.Config, error) {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, &exitError{exitBadInput, err}
		}
		return cfg, nil
	})
	serveFlags := struct{ noMigrate bool }{}
	serve := command("serve", "Run the service (default command)", load.then(func(cfg *config.Config) error {
		return runServe(ctx, cfg, !serveFlags.noMigrate, stderr)
	}))
	serve.Flags().BoolVar(&serveFlags.noMigrate, "no-migrate", false, "do not apply state-store migrations on start")
	root := &cobra.Command{
		Use:           "appwrite-sync",
		Short:         "Sync Appwrite rows into Meilisearch and a Postgres warehouse",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          serve.RunE,
	}
	root.PersistentFlags().StringVar(&cfgPath, "config", "config.yaml", "path of the YAML config file")
	root.Flags().BoolVar(&serveFlags.noMigrate, "no-migrate", false, "do not apply state-store migrations on start")
	root.AddCommand(serve,
		command("migrate", "Apply state-store migrations, then exit", load.then(func(cfg *config.Config) error {
			v, err := migrations.Up(ctx, cfg.State.DatabaseURL)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "state store migrated to version %d\n", v)
			return nil
		})),
		command("validate", "Validate config and mapping, print the plan (indexes, settings, DDL)", load.then(func(cfg *config.Config) error {
			fmt.Fprintf(stdout, "config %s is valid: %d webhook(s), %d table(s)\n\n", cfg.File, len(cfg.Webhooks), len(cfg.Mapping.Tables))
			fmt.Fprint(stdout, cfg.Mapping.Plan())
			fmt.Fprint(stdout, auditPlan(cfg))
			return nil
		})),
		command("version", "Print the version", func(*cobra.Command) error {
			fmt.Fprintln(stdout, "appwrite-sync", version)
			return nil
		}),
		backfillCommand(ctx, load, stdout),
		statusCommand(ctx, load, stdout),
		auditCommand(ctx, load, stdout),
		healthcheckCommand(stdout),
	)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	code := exitFailure
	if errors.As(err, &ee) {
		code = ee.code
	}
	var ce connector.ConfigErrors
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "appwrite-sync: %d problem(s) in the configuration:\n", len(ce))
		for _, e := range ce {
			fmt.Fprintln(stderr, "  "+e.Error())
		}
		return exitBadInput
	}
	fmt.Fprintln(stderr, "appwrite-sync:", err)
	if code == exitFailure && isUsage(err) {
		code = exitBadInput
	}
	return code
}

func isUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "required flag", "invalid argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
