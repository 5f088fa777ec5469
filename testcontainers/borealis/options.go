package borealis

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/testcontainers/testcontainers-go"
)

// Defaults. The master user is the image's (admin): postgres is the control plane's own
// superuser and cannot be the master user. The password is the postgres module's default.
const (
	defaultUser         = "admin"
	defaultPassword     = "postgres"
	defaultDatabase     = "postgres"
	defaultSnapshotName = "migrated_template"

	// Ports inside the container.
	ClusterPort = "5433/tcp"
	ReaderPort  = "5434/tcp"
	APIPort     = "8433/tcp"

	// ClusterName is the name of the dev cluster the image runs.
	ClusterName = "borealis"

	initDir = "/docker-entrypoint-initdb.d/"
)

// Environment variables the image reads (docker/rootfs/usr/local/bin/docker-entrypoint.sh).
const (
	envUser        = "BOREALIS_MASTER_USER"
	envPassword    = "BOREALIS_MASTER_PASSWORD"
	envDatabase    = "BOREALIS_DATABASE"
	envReaders     = "BOREALIS_READERS"
	envMinCapacity = "BOREALIS_MIN_CAPACITY"
	envMaxCapacity = "BOREALIS_MAX_CAPACITY"
	envAutoPause   = "BOREALIS_SECONDS_UNTIL_AUTO_PAUSE"
	envAPIToken    = "BOREALIS_API_TOKEN"
	// envAutoPauseFloor is cluster.AutoPauseFloorEnv, read by the control plane in the container.
	envAutoPauseFloor = "BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS"
)

// WithDatabase sets a database to create with the cluster, owned by the master user
// (BOREALIS_DATABASE); without it clients use postgres. Snapshot and Restore need a database
// other than postgres.
func WithDatabase(dbName string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{envDatabase: dbName})
}

// WithUsername sets the master user (BOREALIS_MASTER_USER, default admin): a login role with
// CREATEDB and CREATEROLE, not a superuser, as Aurora's master user.
func WithUsername(user string) testcontainers.CustomizeRequestOption {
	if user == "" {
		user = defaultUser
	}
	return testcontainers.WithEnv(map[string]string{envUser: user})
}

// WithPassword sets the master user's password (BOREALIS_MASTER_PASSWORD: 8-128 printable ASCII
// characters but / " @ and space). The image refuses to start without one; Run sets "postgres"
// unless this option says otherwise.
func WithPassword(password string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{envPassword: password})
}

// WithReaders sets the number of readers behind the reader endpoint (0 to 15, default 1).
func WithReaders(n int) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if n < 0 || n > 15 {
			return fmt.Errorf("borealis.WithReaders(%d): use 0 to 15 readers", n)
		}
		return testcontainers.WithEnv(map[string]string{envReaders: strconv.Itoa(n)})(req)
	}
}

// WithCapacity sets the serverless capacity range in ACUs (multiples of 0.5 from 0.5 to 128,
// min <= max). The control plane validates it when the container starts; a bad range stops the
// container with the reason in its log.
func WithCapacity(minACU, maxACU float64) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if minACU > maxACU {
			return fmt.Errorf("borealis.WithCapacity(%g, %g): the minimum is above the maximum", minACU, maxACU)
		}
		return testcontainers.WithEnv(map[string]string{
			envMinCapacity: strconv.FormatFloat(minACU, 'f', -1, 64),
			envMaxCapacity: strconv.FormatFloat(maxACU, 'f', -1, 64),
		})(req)
	}
}

// WithAutoPause pauses the cluster after seconds without connections; the next connection
// resumes it. Aurora's range is 300 to 86400 s; below 300 the container's control plane gets the
// dev-only floor (BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS) so a test need not wait five minutes.
func WithAutoPause(seconds int) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if seconds < 1 || seconds > 86400 {
			return fmt.Errorf("borealis.WithAutoPause(%d): give the idle time in seconds, 1 to 86400", seconds)
		}
		env := map[string]string{envAutoPause: strconv.Itoa(seconds)}
		if seconds < 300 {
			env[envAutoPauseFloor] = strconv.Itoa(seconds)
		}
		return testcontainers.WithEnv(env)(req)
	}
}

// WithInitScripts copies the scripts (.sql, .sql.gz or .sh) into /docker-entrypoint-initdb.d;
// the container runs them in name order through the cluster endpoint, once, when the cluster is
// first created, before it reports ready.
func WithInitScripts(scripts ...string) testcontainers.CustomizeRequestOption {
	files := make([]testcontainers.ContainerFile, 0, len(scripts))
	for _, s := range scripts {
		files = append(files, testcontainers.ContainerFile{HostFilePath: s, ContainerFilePath: initDir + filepath.Base(s), FileMode: 0o644})
	}
	return testcontainers.WithFiles(files...)
}

// WithOrderedInitScripts is WithInitScripts in the order given.
func WithOrderedInitScripts(scripts ...string) testcontainers.CustomizeRequestOption {
	files := make([]testcontainers.ContainerFile, 0, len(scripts))
	for i, s := range scripts {
		files = append(files, testcontainers.ContainerFile{HostFilePath: s,
			ContainerFilePath: initDir + fmt.Sprintf("%03d-%s", i, filepath.Base(s)), FileMode: 0o644})
	}
	return testcontainers.WithFiles(files...)
}
