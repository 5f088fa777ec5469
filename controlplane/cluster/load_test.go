package cluster

import "time"

// Test settings for a loaded machine. The package's tests run their servers under the test
// process's own priority: under `nice -n 19` beside nice-0 work on a 2-core machine (the
// developers' machine while benchmarks run), a server gets a few percent of a core for
// minutes at a time, and CI machines may be loaded too. Deadlines here are how long the tests
// wait for real state, never how long the product is allowed to take.

// restartTestGrace is the failover grace period of a test cluster whose subject is a restart
// in place of a killed writer, not the failover (TestFailover tests that, with 3 s): the
// restart in place is bounded by the grace period, and past it a reader is promoted, which is
// the product's documented behaviour but not what such a test checks. Measured on the 2-core
// machine with one nice-0 busy loop beside the nice-19 test: the killed postmaster's children
// took 5 s to let go of its shared memory and crash recovery had not finished 10 s after the
// kill, so the default 10 s grace promoted a reader. A healthy writer that takes no new session
// for a while under the same load is also kept (the detector waits the grace period, or
// failover.AliveLimit of it while a kept session answers).
const restartTestGrace = 120

// restartTestWait is how long such a test waits for the restart in place: the whole grace
// period, plus the time to notice the exit and record the events. It is also its routers' hold
// timeout: an idle session whose backend died is replayed on the restarted writer only if it
// comes back within the hold timeout (a restart took 22.5 s under one nice-0 busy loop, and
// the tests' usual 20 s passed the dying backend's FATAL on to the client).
const restartTestWait = restartTestGrace*time.Second + time.Minute
