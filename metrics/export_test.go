package metrics

// Readings is how many readings of the outbox gauges m's scrapes have made.
func Readings(m *Metrics) int64 { return m.outbox.readings.Load() }

// ReadingFor is how long a reading serves the scrapes after it.
const ReadingFor = readingFor
