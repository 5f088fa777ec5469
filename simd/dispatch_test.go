package simd

import (
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestInfoReportsTheActivePath(t *testing.T) {
	info := Info()
	if info.Arch != runtime.GOARCH {
		t.Fatalf("Arch %q, want %q", info.Arch, runtime.GOARCH)
	}
	if !slices.Contains(info.Available, info.Path) {
		t.Fatalf("active path %q not among available %v", info.Path, info.Available)
	}
	if info.Available[len(info.Available)-1] != "generic" {
		t.Fatalf("generic must always be available, last: %v", info.Available)
	}
	if forced := os.Getenv(EnvVar); forced != "" && info.Path != forced {
		t.Fatalf("%s=%s but path is %q (error %q)", EnvVar, forced, info.Path, info.Error)
	}
	if info.Error != "" && os.Getenv(EnvVar) == "" {
		t.Fatalf("error %q without a forced path", info.Error)
	}
	if runtime.GOARCH == "amd64" && (len(info.Features) == 0 || info.CPU == "") {
		t.Fatalf("cpuid saw nothing: %+v", info)
	}
	js, err := json.Marshal(info)
	if err != nil || !strings.Contains(string(js), `"path":"`+info.Path+`"`) {
		t.Fatalf("json %s, %v", js, err)
	}
}

func TestSelectRefusesUnknownPathAndKeepsCurrent(t *testing.T) {
	before := Info().Path
	err := Select("avx9000")
	if err == nil || !strings.Contains(err.Error(), `unknown path "avx9000"`) {
		t.Fatalf("Select(avx9000) = %v", err)
	}
	if Info().Path != before {
		t.Fatalf("failed Select changed path from %s to %s", before, Info().Path)
	}
	if err := Select("generic"); err != nil || Info().Path != "generic" {
		t.Fatalf("Select(generic) = %v, path %s", err, Info().Path)
	}
	if err := Select(before); err != nil {
		t.Fatal(err)
	}
}

func TestForcedPathAtInitFallsBackWithoutPanicking(t *testing.T) {
	before, beforeErr := Info().Path, initError
	defer func() {
		initError = beforeErr
		if err := Select(before); err != nil {
			t.Fatal(err)
		}
	}()
	selectAtInit("avx1024") // no such path: must be a recorded error, never a panic
	info := Info()
	if info.Path != info.Available[0] {
		t.Fatalf("fallback path %q, want best available %q", info.Path, info.Available[0])
	}
	if !strings.Contains(info.Error, "BOREALIS_SIMD=avx1024") || !strings.Contains(info.Error, "using "+info.Path) {
		t.Fatalf("error not recorded clearly: %q", info.Error)
	}
	initError = ""
	selectAtInit("generic")
	if Info().Path != "generic" || Info().Error != "" {
		t.Fatalf("forcing generic: %+v", Info())
	}
}

// A path compiled in but missing from the CPU (stood in for by a fake entry, since this
// machine has every instruction we use) is refused by Select and falls back at init.
func TestUnsupportedPathIsAnErrorNotACrash(t *testing.T) {
	saved, before, beforeErr := paths, Info().Path, initError
	defer func() {
		paths, initError = saved, beforeErr
		if err := Select(before); err != nil {
			t.Fatal(err)
		}
	}()
	fake := genericImpl
	fake.name = "fakeisa"
	paths = append(slices.Clone(saved), pathEntry{&fake, func() bool { return false }})
	if err := Select("fakeisa"); err == nil || !strings.Contains(err.Error(), `path "fakeisa" is not supported by this CPU`) {
		t.Fatalf("Select(fakeisa) = %v", err)
	}
	if slices.Contains(Info().Available, "fakeisa") || !slices.Contains(Paths(), "fakeisa") {
		t.Fatalf("fakeisa: available %v, compiled %v", Info().Available, Paths())
	}
	selectAtInit("fakeisa")
	if info := Info(); info.Path == "fakeisa" || !strings.Contains(info.Error, "not supported") {
		t.Fatalf("init with unsupported path: %+v", info)
	}
}
