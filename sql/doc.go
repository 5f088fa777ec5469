// Package sql holds the extension's SQL: the install script, assembled in order from parts/
// by the Makefile, and the pg_regress suite in test/, which regress_test.go runs against a
// throwaway server with the installed extension.
package sql
