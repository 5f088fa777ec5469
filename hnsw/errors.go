package hnsw

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these (or are a
// *DimensionError / *MemoryError / *CorruptError), so callers can use errors.Is
// and errors.As.
var (
	// ErrDimensionMismatch: a vector's length differs from the index's dims.
	ErrDimensionMismatch = errors.New("hnsw: vector has wrong number of dimensions")
	// ErrNonFinite: a vector has a NaN or ±Inf component.
	ErrNonFinite = errors.New("hnsw: vector has a NaN or infinite component")
	// ErrZeroVector: a zero vector under the cosine metric, whose direction is undefined.
	ErrZeroVector = errors.New("hnsw: zero vector has no cosine distance")
	// ErrDuplicateID: the id is already in the index (deleted ids included).
	ErrDuplicateID = errors.New("hnsw: id already present")
	// ErrIDOutOfRange: the id is above MaxID (2^31 − 1).
	ErrIDOutOfRange = errors.New("hnsw: id above MaxID")
	// ErrNotFound: the id is not in the index.
	ErrNotFound = errors.New("hnsw: id not present")
	// ErrOutOfMemory: the estimated memory exceeds Options.MemoryLimit.
	ErrOutOfMemory = errors.New("hnsw: index would not fit in the memory limit")
	// ErrCorrupt: Decode found an invalid or damaged encoding.
	ErrCorrupt = errors.New("hnsw: corrupt encoding")
	// ErrInvalidOptions: New was given unusable parameters.
	ErrInvalidOptions = errors.New("hnsw: invalid options")
	// ErrInvalidGraph: Restore/SetNeighbors/SetEntryPoint were given an
	// inconsistent graph (bad level, too many neighbours, unknown id).
	ErrInvalidGraph = errors.New("hnsw: invalid graph data")
	// ErrFull: a mapped graph (Attach) has no room left for the node; its
	// owner must map a larger one.
	ErrFull = errors.New("hnsw: mapped graph is full")
)

// errUpperFull is internal: the upper slab needs to grow before the insert
// can go on (the caller retries after growUpper).
var errUpperFull = errors.New("hnsw: upper slab full")

// errArenaFull is internal: the sparse code arena needs to grow first (the
// caller retries after growArena, which a mapped graph refuses with ErrFull).
var errArenaFull = errors.New("hnsw: sparse code arena full")

// DimensionError reports a vector of the wrong length. It matches
// ErrDimensionMismatch under errors.Is.
type DimensionError struct{ Got, Want int }

func (e *DimensionError) Error() string {
	return fmt.Sprintf("hnsw: vector has %d dimensions, index has %d", e.Got, e.Want)
}

// Is makes errors.Is(err, ErrDimensionMismatch) true.
func (e *DimensionError) Is(target error) bool { return target == ErrDimensionMismatch }

// MemoryError reports a refused allocation. It matches ErrOutOfMemory.
type MemoryError struct {
	Nodes      int   // number of node slots that were requested
	NeedBytes  int64 // EstimateMemory for those slots
	LimitBytes int64 // the limit in force
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("hnsw: %d nodes need about %d MiB, more than the %d MiB memory limit",
		e.Nodes, e.NeedBytes>>20, e.LimitBytes>>20)
}

// Is makes errors.Is(err, ErrOutOfMemory) true.
func (e *MemoryError) Is(target error) bool { return target == ErrOutOfMemory }

// CorruptError says where Decode found a problem. It matches ErrCorrupt.
type CorruptError struct {
	Offset int    // byte offset in the encoding
	Reason string // what was wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("hnsw: corrupt encoding at byte %d: %s", e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
