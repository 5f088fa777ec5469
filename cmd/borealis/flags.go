package main

import (
	"errors"
	"flag"
	"io"
)

// errFlagHelp is returned when -h was asked for: the usage was printed, exit 0.
var errFlagHelp = errors.New("help requested")

// newFlagSet makes a FlagSet that reports errors instead of exiting, so run() decides the exit
// code, and prints its usage to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("borealis "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, mapping -h to errFlagHelp and other flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parseFlagsOnly parses args like parseFlags but leaves positional arguments to the caller.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errFlagHelp
		}
		return usageError{err.Error()}
	}
	return nil
}
