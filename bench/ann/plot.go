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

// WritePNG draws recall@k against QPS (log scale), one panel per dataset and one line per
// index, as ann-benchmarks draws it: solid for 1 client, dashed for N clients.
func (r *Report) WritePNG(w io.Writer) error {
	n := max(1, len(r.Datasets))
	const panelW, panelH = 5.5 * vg.Inch, 4.5 * vg.Inch
	row := make([]*plot.Plot, n)
	for i := range row {
		row[i] = plot.New()
	}
	for i, d := range r.Datasets {
		p := row[i]
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
		p.BackgroundColor = color.White
	}
	img := vgimg.New(vg.Length(n)*panelW, panelH)
	dc := draw.New(img)
	canvases := plot.Align([][]*plot.Plot{row}, draw.Tiles{Rows: 1, Cols: n, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4}, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
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
