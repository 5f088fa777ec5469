// Command borealis is the one Borealis CLI. Each subcommand lives in its own file and registers
// itself in commands; this file only dispatches and keeps the conventions every subcommand
// follows: `--output json` for machines, a readable table otherwise, a clear message on stderr
// and a non-zero exit on failure (2 for usage errors, 1 for everything else).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run gets the arguments after the subcommand's name.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is filled by init functions in the subcommand files.
var commands = map[string]command{}

// usageError marks a bad invocation; it exits with status 2, like flag parsing errors.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "borealis: unknown command %q; run 'borealis help' for the list\n", args[0])
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "borealis %s: %v\n", args[0], err)
			return 2
		}
		if errors.Is(err, errFlagHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "borealis %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "borealis: PostgreSQL with a Go vector engine, run like a serverless cluster.")
	fmt.Fprintln(w, "\nUsage: borealis <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'borealis <command> -h' for a command's flags.")
}

// outputFormat validates the --output flag shared by all subcommands.
func outputFormat(v string) (string, error) {
	switch strings.ToLower(v) {
	case "", "table", "text":
		return "table", nil
	case "json":
		return "json", nil
	}
	return "", usagef("--output must be json or table, got %q", v)
}
