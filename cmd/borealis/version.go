package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/borealisdb/borealis/simd"
)

// Version is the Borealis release, the same as the extension's default_version.
const Version = "0.1.0"

func init() {
	commands["version"] = command{summary: "print the Borealis version, Go runtime and SIMD path", run: runVersion}
}

type versionInfo struct {
	Version   string       `json:"version"`
	GoVersion string       `json:"go_version"`
	SIMD      simd.CPUInfo `json:"simd"`
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	output := fs.String("output", "table", "output format: table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	format, err := outputFormat(*output)
	if err != nil {
		return err
	}
	info := versionInfo{Version: Version, GoVersion: runtime.Version(), SIMD: simd.Info()}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(stdout, "borealis %s (%s, %s/%s)\n", info.Version, info.GoVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "simd path: %s on %s\n", info.SIMD.Path, info.SIMD.CPU)
	fmt.Fprintf(stdout, "cpu features: %s\n", strings.Join(info.SIMD.Features, " "))
	return nil
}
