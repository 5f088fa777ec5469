package logs

import "github.com/prometheus/client_golang/prometheus"

var (
	descIngested = prometheus.NewDesc("borealis_logs_ingested_total", "Log events stored in a log group by this control plane since it started.", []string{"log_group"}, nil)
	descExpired  = prometheus.NewDesc("borealis_logs_expired_total", "Log events dropped from the local store by retention or its size bound.", nil, nil)
	descExported = prometheus.NewDesc("borealis_logs_exported_total", "Log events the OTLP collector accepted.", nil, nil)
	descDropped  = prometheus.NewDesc("borealis_logs_export_dropped_total", "Log events never exported: expired before export, or refused for good (4xx) by the collector.", nil, nil)
	descFailures = prometheus.NewDesc("borealis_logs_export_failures_total", "Failed OTLP export requests (retried with back-off).", nil, nil)
	descLag      = prometheus.NewDesc("borealis_logs_export_lag_records", "Log events stored but not yet exported.", nil, nil)
	descLagSecs  = prometheus.NewDesc("borealis_logs_export_lag_seconds", "Age of the oldest log event not yet exported.", nil, nil)
)

// Collector returns the service's Prometheus collector.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIngested, descExpired, descExported, descDropped, descFailures, descLag, descLagSecs} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Snapshot()
	for g, n := range st.Ingested {
		ch <- prometheus.MustNewConstMetric(descIngested, prometheus.CounterValue, float64(n), g)
	}
	ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(st.Expired))
	if ex, ok := c.s.ExportStats(); ok {
		ch <- prometheus.MustNewConstMetric(descExported, prometheus.CounterValue, float64(ex.Exported))
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(ex.Dropped))
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(ex.Failures))
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(ex.LagRecords))
		ch <- prometheus.MustNewConstMetric(descLagSecs, prometheus.GaugeValue, ex.LagSeconds)
	}
}
