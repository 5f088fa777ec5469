package hnsw

import "syscall"

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14), which package syscall lacks.
const madvPopulateWrite = 23

// populateWrite prefaults [addr, addr+n) writable; errors are ignored (see Prefault).
func populateWrite(addr, n uintptr) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, n, madvPopulateWrite)
}
