package depsprobe

import (
	_ "github.com/coder/hnsw"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/klauspost/cpuid/v2"
	_ "github.com/mmcloughlin/avo/build"
	_ "github.com/pgvector/pgvector-go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/viterin/vek/vek32"
	_ "go.etcd.io/bbolt"
	_ "gonum.org/v1/plot"
)
