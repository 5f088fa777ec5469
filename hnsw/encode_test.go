package hnsw

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		t.Run(m.String(), func(t *testing.T) {
			data := clustered(1500, 24, 8, 11)
			x := build(t, data, m, Options{M: 6, EfConstruction: 32, Seed: 4})
			for id := uint32(0); id < 1500; id += 7 {
				if err := x.Delete(id); err != nil {
					t.Fatal(err)
				}
			}
			enc := x.Encode(nil)
			y, err := Decode(enc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			graphsEqual(t, x, y)
			if x.Live() != y.Live() || y.Metric() != m || y.Options().M != 6 {
				t.Fatalf("decoded live %d metric %v M %d", y.Live(), y.Metric(), y.Options().M)
			}
			if again := y.Encode(nil); !bytes.Equal(enc, again) {
				t.Fatal("re-encoding the decoded index gives different bytes")
			}
			q := data[3]
			a, b := x.Search(q, 10, 40), y.Search(q, 10, 40)
			if len(a) != 10 || len(b) != 10 {
				t.Fatalf("searches returned %d and %d results", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("result %d: %v vs %v", i, a[i], b[i])
				}
			}
		})
	}
}

func TestEncodeEmptyAndSparse(t *testing.T) {
	x, _ := New(3, L2, Options{})
	y, err := Decode(x.Encode(nil), Options{})
	if err != nil || y.Len() != 0 {
		t.Fatalf("empty round trip: %v, len %d", err, y.Len())
	}
	if err := x.Add(5, []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	y, err = Decode(x.Encode(nil), Options{})
	if err != nil || y.Len() != 1 || y.IDLimit() != 6 || !y.Contains(5) || y.Contains(2) {
		t.Fatalf("sparse round trip: %v len %d limit %d", err, y.Len(), y.IDLimit())
	}
}

// Every single-byte corruption and every truncation must give ErrCorrupt.
func TestDecodeRejectsEveryCorruption(t *testing.T) {
	x := build(t, clustered(40, 4, 2, 1), Cosine, Options{M: 2, Seed: 1})
	enc := x.Encode(nil)
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 0x41
		if _, err := Decode(bad, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping byte %d: err = %v, want ErrCorrupt", i, err)
		}
	}
	for n := range len(enc) {
		if _, err := Decode(enc[:n], Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrCorrupt", n, err)
		}
	}
	var ce *CorruptError
	if _, err := Decode(append(bytes.Clone(enc), 0), Options{}); !errors.As(err, &ce) {
		t.Fatalf("trailing byte: %v, want *CorruptError", err)
	}
}

func TestNodeRecordFitsPage(t *testing.T) {
	const page = 8192
	if got := NodeRecordSize(784, 16, 0); got > page {
		t.Fatalf("784-dim level-0 record is %d bytes, over a page", got)
	}
	x := build(t, clustered(300, 16, 3, 2), L2, Options{M: 4, Seed: 2})
	for id := range uint32(300) {
		rec := x.AppendNode(nil, id)
		if max := NodeRecordSize(16, 4, x.Level(id)); len(rec) > max {
			t.Fatalf("node %d record %d bytes > NodeRecordSize %d", id, len(rec), max)
		}
	}
}
