// Command overlay prepares the engine's runtime patch for the Makefile: it writes the patched
// runtime/proc.go and overlay.json under -dir and prints the `go build` flags that use them
// as two words: -overlay=… and the linker's -X that names the patch to borealis_engine_info(),
// which the Makefile adds to the engine's other -ldflags. If the toolchain's
// runtime does not match the edits it says why on stderr and prints nothing, so the engine is
// built with the stock runtime and reports runtime_patch "" (slower, not wrong).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/borealisdb/borealis/internal/runtimepatch"
)

func main() {
	dir := flag.String("dir", "build/_runtime-overlay", "where to write the patched proc.go and overlay.json (a name go's ./... patterns skip)")
	goroot := flag.String("goroot", "", "the toolchain's GOROOT (`go env GOROOT`)")
	flag.Parse()
	if *goroot == "" {
		fmt.Fprintln(os.Stderr, "usage: overlay -goroot \"$(go env GOROOT)\" [-dir DIR]")
		os.Exit(2)
	}
	overlay, err := runtimepatch.WriteOverlay(*goroot, *dir)
	if err != nil {
		os.Remove(filepath.Join(*dir, "overlay.json"))
		fmt.Fprintf(os.Stderr, "warning: building the engine with the stock Go runtime: %v\n", err)
		return
	}
	fmt.Printf("-overlay=%s -X=main.runtimePatch=%s\n", overlay, runtimepatch.Name)
}
