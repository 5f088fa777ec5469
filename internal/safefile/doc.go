// Package safefile reads and writes the control plane's own files (state, API token, api.json,
// generated passwords and certificates) so that a local user who can write somewhere near them
// — above all the nodes' OS user, which any database superuser can act as through
// `COPY ... TO PROGRAM` — cannot redirect them: no symbolic link is followed at the last path
// component, files are checked for type, owner and mode after opening, directories for owner
// and write access up to the root, and writes go to a new file renamed into place.
//
// It owns file access only: it never decides where files live or what they hold.
package safefile
