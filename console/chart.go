package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// The charts are SVG drawn here from the per-minute figures: one point per minute of
// the last 24 hours, in a fixed view box the style sheet scales to the page.
const (
	chartMinutes = 24 * 60
	chartW       = 760.0
	chartH       = 190.0
	plotLeft     = 52.0
	plotRight    = 748.0
	plotTop      = 12.0
	plotBottom   = 160.0
)

// tick is a labelled mark on a chart's axis.
type tick struct {
	X, Y  float64
	Label string
	Time  time.Time // for the time axis: the script shows it in the reader's zone
}

// hourRow is one hour of the figures, for the table beside the charts.
type hourRow struct {
	Start     time.Time
	Delivered int
	Failed    int
	Avg       time.Duration
}

// charts are the overview's two charts and their figures as a table.
type charts struct {
	W, H          float64
	PlotLeft      float64
	PlotRight     float64
	PlotTop       float64
	PlotBottom    float64
	Delivered     string // polyline points
	Failed        string
	Latency       []string // polylines: one per run of minutes with attempts
	LatencyDots   []point  // a minute with attempts alone: a dot, as a line of one point draws nothing
	CountTicks    []tick
	LatencyTicks  []tick
	TimeTicks     []tick
	CountSummary  string
	LatencySumm   string
	Hours         []hourRow
	Empty         bool
	TotalOK       int
	TotalFailed   int
	LastHourOK    int
	LastHourFail  int
	LastHourSlow  time.Duration
	From, To      time.Time
	LatencyScaleM string
}

// point is a place on a chart.
type point struct{ X, Y float64 }

// buildCharts draws the figures of the 24 hours before now (now's minute included).
func buildCharts(figs []store.MinuteFigures, now time.Time) charts {
	end := now.UTC().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-chartMinutes * time.Minute)
	c := charts{W: chartW, H: chartH, PlotLeft: plotLeft, PlotRight: plotRight, PlotTop: plotTop, PlotBottom: plotBottom,
		From: start, To: end, Empty: true}
	var ok, failed, timed [chartMinutes]int // timed: the attempts whose duration avg is of
	var avg [chartMinutes]time.Duration
	var has [chartMinutes]bool
	maxCount, maxAvg := 0, time.Duration(0)
	for _, f := range figs {
		i := int(f.Minute.Sub(start) / time.Minute)
		if i < 0 || i >= chartMinutes {
			continue
		}
		ok[i], failed[i], avg[i], has[i], timed[i] = f.Delivered, f.Failed, f.AvgDuration, f.Attempts > 0, f.Attempts
		maxCount = max(maxCount, f.Delivered, f.Failed)
		maxAvg = max(maxAvg, f.AvgDuration)
		c.TotalOK += f.Delivered
		c.TotalFailed += f.Failed
		c.Empty = false
		if i >= chartMinutes-60 {
			c.LastHourOK += f.Delivered
			c.LastHourFail += f.Failed
			c.LastHourSlow = max(c.LastHourSlow, f.MaxDuration)
		}
	}
	yMax := niceCeil(float64(max(maxCount, 1)))
	latMax := niceCeil(max(float64(maxAvg.Milliseconds()), 1))
	x := func(i int) float64 { return plotLeft + float64(i)*(plotRight-plotLeft)/float64(chartMinutes-1) }
	y := func(v, top float64) float64 { return plotBottom - v/top*(plotBottom-plotTop) }
	var okPts, failPts strings.Builder
	var seg strings.Builder
	run, lone := 0, point{} // the minutes in seg, and the first one's place
	endRun := func() {
		switch {
		case run == 1:
			c.LatencyDots = append(c.LatencyDots, lone)
		case run > 1:
			c.Latency = append(c.Latency, seg.String())
		}
		seg.Reset()
		run = 0
	}
	for i := range chartMinutes {
		fmt.Fprintf(&okPts, "%.1f,%.1f ", x(i), y(float64(ok[i]), yMax))
		fmt.Fprintf(&failPts, "%.1f,%.1f ", x(i), y(float64(failed[i]), yMax))
		if has[i] {
			p := point{x(i), y(float64(avg[i].Milliseconds()), latMax)}
			fmt.Fprintf(&seg, "%.1f,%.1f ", p.X, p.Y)
			if run == 0 {
				lone = p
			}
			run++
		} else {
			endRun()
		}
	}
	endRun()
	c.Delivered, c.Failed = strings.TrimSpace(okPts.String()), strings.TrimSpace(failPts.String())
	for _, v := range []float64{0, yMax / 2, yMax} {
		c.CountTicks = append(c.CountTicks, tick{X: plotLeft - 6, Y: y(v, yMax), Label: trimFloat(v)})
	}
	for _, v := range []float64{0, latMax / 2, latMax} {
		label := trimFloat(v) + " ms"
		if latMax >= 1000 {
			label = trimFloat(v/1000) + " s"
		}
		c.LatencyTicks = append(c.LatencyTicks, tick{X: plotLeft - 6, Y: y(v, latMax), Label: label})
	}
	// A tick at every 6th full hour (UTC), labelled with its time.
	first := start.Truncate(6 * time.Hour)
	if first.Before(start) {
		first = first.Add(6 * time.Hour)
	}
	for t := first; t.Before(end); t = t.Add(6 * time.Hour) {
		if t.Sub(start) < 45*time.Minute || end.Sub(t) < 45*time.Minute {
			continue // a label at the edge would be cut off
		}
		c.TimeTicks = append(c.TimeTicks, tick{X: x(int(t.Sub(start) / time.Minute)), Y: plotBottom + 16, Label: t.Format("15:04") + " UTC", Time: t})
	}
	for h := range 24 {
		row := hourRow{Start: start.Add(time.Duration(h) * time.Hour)}
		// The hour's average is of its attempts, each minute weighed by how many
		// it had: one slow attempt in a quiet minute is not half the hour's.
		var sum time.Duration
		var n int
		for i := h * 60; i < (h+1)*60; i++ {
			row.Delivered += ok[i]
			row.Failed += failed[i]
			sum += avg[i] * time.Duration(timed[i])
			n += timed[i]
		}
		if n > 0 {
			row.Avg = sum / time.Duration(n)
		}
		c.Hours = append(c.Hours, row)
	}
	c.CountSummary = fmt.Sprintf("In the 24 hours to %s UTC: %d successful and %d failed attempts; the busiest minute had %d.",
		end.Format("2006-01-02 15:04"), c.TotalOK, c.TotalFailed, maxCount)
	c.LatencySumm = fmt.Sprintf("Average attempt duration per minute, at most %d ms in the 24 hours to %s UTC.",
		maxAvg.Milliseconds(), end.Format("2006-01-02 15:04"))
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
