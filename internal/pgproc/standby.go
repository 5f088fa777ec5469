package pgproc

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// BaseBackup makes standby's data directory a copy of primary through pg_basebackup, with a
// physical replication slot named slot (created if missing) and the standby settings written
// (-R), so Start brings it up as a hot standby streaming from primary.
func BaseBackup(ctx context.Context, primary *Node, standby *Node, slot string) error {
	if err := PrepareDir(filepath.Dir(standby.DataDir), standby.DirMode); err != nil {
		return err
	}
	// With passwords on TCP, replication goes through the primary's private socket, and -R
	// writes that into the standby's primary_conninfo.
	host := "127.0.0.1"
	if primary.HostAuth != "" {
		host = primary.SocketDir
	}
	args := []string{"-h", host, "-p", strconv.Itoa(primary.Port), "-U", "postgres",
		"-D", standby.DataDir, "-X", "stream", "-R", "--checkpoint=fast"}
	if slot != "" {
		args = append(args, "-S", slot, "-C")
	}
	cmd, err := Command("pg_basebackup", args...)
	if err != nil {
		return err
	}
	if out, err := runCtx(ctx, cmd); err != nil {
		return fmt.Errorf("pg_basebackup from port %d into %s: %w\n%s", primary.Port, standby.DataDir, err, out)
	}
	settings := map[string]string{
		"unix_socket_directories": quote(standby.SocketDir),
		"hot_standby":             "on",
	}
	for k, v := range standby.Settings {
		settings[k] = v
	}
	return standby.AppendSettings(settings)
}
