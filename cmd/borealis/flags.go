package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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

// sharedString is a string flag that several names share, such as --name and aws rds's
// --db-cluster-identifier: the same value twice is fine, two different values are an error
// rather than a silent last-one-wins.
type sharedString struct{ p *string }

func (v sharedString) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v sharedString) Set(s string) error {
	if *v.p != "" && *v.p != s {
		return fmt.Errorf("given twice, as %q and %q", *v.p, s)
	}
	*v.p = s
	return nil
}

// aliasedString registers one string flag under every name in names; the first is the main one,
// the others say they are the same (aws rds's spelling). A `word` in usage names the value in
// -h, as with flag's own.
func aliasedString(fs *flag.FlagSet, names []string, usage string) *string {
	p := new(string)
	for i, n := range names {
		u := usage
		if i > 0 {
			u = "the same `identifier` as --" + names[0] + ", in aws rds's spelling"
		}
		fs.Var(sharedString{p}, n, u)
	}
	return p
}

// clusterNameFlag is --name, also spelled --db-cluster-identifier as in aws rds.
func clusterNameFlag(fs *flag.FlagSet, usage string) *string {
	return aliasedString(fs, []string{"name", "db-cluster-identifier"}, strings.Replace(usage, "identifier", "`identifier`", 1))
}
