package ann

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePNG draws one row of panels per dataset: recall@k against QPS (log scale), one line
// per index, as ann-benchmarks draws it (solid for 1 client, dashed for N clients); then bars
// per index for the first query on a fresh connection, the server memory per connection, and
// the insert rate with 1 and N clients.
func (r *Report) WritePNG(w io.Writer) error {
	n := max(1, len(r.Datasets))
	const cols = 4
	const panelW, panelH = 5.5 * vg.Inch, 4.5 * vg.Inch
	grid := make([][]*plot.Plot, n)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
		for j := range grid[i] {
			grid[i][j] = plot.New()
			grid[i][j].BackgroundColor = color.White
		}
	}
	for i, d := range r.Datasets {
		if err := r.barPanels(grid[i][1:], d); err != nil {
			return err
		}
		p := grid[i][0]
		p.Title.Text = fmt.Sprintf("%s (%d×%d, %s)", d.Dataset, d.N, d.Dim, d.Metric)
		p.X.Label.Text = fmt.Sprintf("recall@%d", r.Settings.K)
		p.Y.Label.Text = "queries per second (log)"
		if lo, hi := qpsRange(d); hi > 10*lo {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		} else {
			p.Y.Label.Text = "queries per second"
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = false
		p.Legend.Left = true
		for j, ix := range d.Indexes {
			for _, conc := range []bool{false, true} {
				xys := make(plotter.XYs, 0, len(ix.Points))
				for _, pt := range ix.Points {
					q := pt.QPS
					if conc {
						q = pt.QPSN
					}
					if q > 0 && !math.IsNaN(pt.Recall) {
						xys = append(xys, plotter.XY{X: pt.Recall, Y: q})
					}
				}
				if len(xys) == 0 {
					continue
				}
				line, points, err := plotter.NewLinePoints(xys)
				if err != nil {
					return err
				}
				c := plotutil.Color(j)
				line.Color, points.Color = c, c
				points.Shape = plotutil.Shape(j)
				label := ix.Index.AM + ", 1 client"
				if conc {
					line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
					label = fmt.Sprintf("%s, %d clients", ix.Index.AM, r.Settings.Clients)
				}
				p.Add(line, points)
				p.Legend.Add(label, line, points)
			}
		}
		if len(d.Indexes) == 0 {
			p.Title.Text += ": nothing measured"
		}
	}
	img := vgimg.New(cols*panelW, vg.Length(n)*panelH)
	dc := draw.New(img)
	canvases := plot.Align(grid, draw.Tiles{Rows: n, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4}, dc)
	for i := range grid {
		for j, p := range grid[i] {
			p.Draw(canvases[i][j])
		}
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// barPanels fills the three bar panels of dataset d: first query on a fresh connection (ms),
// server memory per connection (MiB), and inserts per second with 1 and N clients. Bars take
// each index's colour from the recall panel and carry their value, since the indexes can
// differ by orders of magnitude.
func (r *Report) barPanels(panels []*plot.Plot, d DatasetResult) error {
	type series struct {
		am     string
		values plotter.Values // one per x group
	}
	var first, mem, ins []series
	for _, ix := range d.Indexes {
		var f Fresh
		var in Inserts
		if ix.Fresh != nil {
			f = *ix.Fresh
		}
		if ix.Inserts != nil {
			in = *ix.Inserts
		}
		first = append(first, series{ix.Index.AM, plotter.Values{f.FirstP50ms}})
		mem = append(mem, series{ix.Index.AM, plotter.Values{float64(f.PerConnection) / (1 << 20),
			float64(f.Marginal) / (1 << 20), float64(f.Private) / (1 << 20)}})
		ins = append(ins, series{ix.Index.AM, plotter.Values{in.Rate1, in.RateN}})
	}
	for k, spec := range []struct {
		title, y, format string
		groups           []string
		data             []series
	}{
		{fmt.Sprintf("first query on a fresh connection (p50 of %d)", r.Settings.FreshConnections), "connect + first query, ms", "%.0f ms",
			[]string{"first query"}, first},
		{"server memory per connection that ran a query", "MiB", "%.1f MiB",
			[]string{"fresh (" + r.Settings.MemoryKind + "/N)", "one more (" + r.Settings.MemoryKind + ")", "its private (USS)"}, mem},
		{"single-row inserts into the indexed table", "rows per second", "%.0f/s",
			[]string{"1 client", fmt.Sprintf("%d clients", r.Settings.InsertClients)}, ins},
	} {
		p := panels[k]
		p.Title.Text = spec.title
		p.Y.Label.Text = spec.y
		p.Add(plotter.NewGrid())
		top := 0.0
		for _, sr := range spec.data {
			for _, v := range sr.values {
				top = math.Max(top, v)
			}
		}
		if top == 0 {
			p.Title.Text += ": not measured"
			continue
		}
		width := vg.Points(120) / vg.Length(max(1, len(spec.data)))
		for j, sr := range spec.data {
			bars, err := plotter.NewBarChart(sr.values, width)
			if err != nil {
				return err
			}
			bars.Color = plotutil.Color(j)
			bars.LineStyle.Width = 0
			bars.Offset = width * vg.Length(2*j-len(spec.data)+1) / 2
			p.Add(bars)
			p.Legend.Add(sr.am, bars)
			xys := make([]plotter.XY, len(sr.values))
			texts := make([]string, len(sr.values))
			for g, v := range sr.values {
				// Labels sit in data coordinates: spread them like the bars around each group.
				xys[g] = plotter.XY{X: float64(g) + (float64(j)-float64(len(spec.data)-1)/2)*0.8/float64(len(spec.data)), Y: v}
				texts[g] = fmt.Sprintf(spec.format, v)
			}
			labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
			if err != nil {
				return err
			}
			for i := range labels.TextStyle {
				labels.TextStyle[i].XAlign = draw.XCenter
			}
			labels.Offset = vg.Point{Y: vg.Points(3)}
			p.Add(labels)
		}
		p.NominalX(spec.groups...)
		p.X.Min, p.X.Max = -0.6, float64(len(spec.groups))-0.4
		p.Y.Min, p.Y.Max = 0, top*1.25
		p.Legend.Top = true
	}
	return nil
}

// qpsRange is the smallest and largest QPS measured on d.
func qpsRange(d DatasetResult) (lo, hi float64) {
	lo = math.Inf(1)
	for _, ix := range d.Indexes {
		for _, p := range ix.Points {
			lo, hi = math.Min(lo, math.Min(p.QPS, p.QPSN)), math.Max(hi, math.Max(p.QPS, p.QPSN))
		}
	}
	return lo, hi
}
