package logs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Event is FilterLogEvents' event shape.
type Event struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

// FilterInput is a FilterLogEvents request.
type FilterInput struct {
	LogGroupName  string
	StartTime     int64 // ms, inclusive; 0: from the first event
	EndTime       int64 // ms, exclusive; 0: no end
	FilterPattern string
	Limit         int // 1-10000; 0 means 1000
	NextToken     string
}

// FilterOutput is FilterLogEvents' answer. NextToken is always set: passing it back returns
// only events stored since (how `tail --follow` polls).
type FilterOutput struct {
	Events    []Event `json:"events"`
	NextToken string  `json:"nextToken"`
}

// pattern is a CloudWatch-style filter: every term (a word, or a "quoted phrase") must occur,
// case-sensitively. An empty pattern matches everything.
type pattern []string

func parsePattern(p string) (pattern, error) {
	var out pattern
	p = strings.TrimSpace(p)
	for p != "" {
		if p[0] == '"' {
			end := strings.IndexByte(p[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("filter pattern: unbalanced quote in %q", p)
			}
			if term := p[1 : 1+end]; term != "" {
				out = append(out, term)
			}
			p = strings.TrimSpace(p[end+2:])
			continue
		}
		term, rest, _ := strings.Cut(p, " ")
		out = append(out, term)
		p = strings.TrimSpace(rest)
	}
	return out, nil
}

func (p pattern) match(msg string) bool {
	for _, t := range p {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	return true
}

func encodeToken(pos map[string]uint64) string {
	data, _ := json.Marshal(pos)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeToken(tok string) (map[string]uint64, error) {
	pos := map[string]uint64{}
	if tok == "" {
		return pos, nil
	}
	data, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		err = json.Unmarshal(data, &pos)
	}
	if err != nil {
		return nil, fmt.Errorf("nextToken %q is not one this control plane gave out", tok)
	}
	return pos, nil
}

type candidate struct {
	stream string
	r      Record
}

// Filter returns a group's events, oldest first (by event time), matching the input.
func (s *Service) Filter(in FilterInput) (FilterOutput, error) {
	g, err := s.Group(in.LogGroupName)
	if err != nil {
		return FilterOutput{}, err
	}
	if in.Limit == 0 {
		in.Limit = 1000
	}
	if in.Limit < 1 || in.Limit > 10000 {
		return FilterOutput{}, fmt.Errorf("limit %d: use 1 to 10000", in.Limit)
	}
	pat, err := parsePattern(in.FilterPattern)
	if err != nil {
		return FilterOutput{}, err
	}
	pos, err := decodeToken(in.NextToken)
	if err != nil {
		return FilterOutput{}, err
	}
	var all []candidate
	scanned := map[string]uint64{}
	for _, st := range g.streamList() {
		from := max(pos[st.name], 1)
		scanned[st.name] = from
		n := 0
		err := st.read(from, func(r Record) bool {
			scanned[st.name] = r.Seq + 1
			if (in.StartTime > 0 && r.Time < in.StartTime) || (in.EndTime > 0 && r.Time >= in.EndTime) || !pat.match(r.Message) {
				return true
			}
			all = append(all, candidate{st.name, r})
			n++
			return n < in.Limit
		})
		if err != nil {
			return FilterOutput{}, err
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].r.Time != all[j].r.Time {
			return all[i].r.Time < all[j].r.Time
		}
		if all[i].stream != all[j].stream {
			return all[i].stream < all[j].stream
		}
		return all[i].r.Seq < all[j].r.Seq
	})
	taken, left := all, []candidate(nil)
	if len(all) > in.Limit {
		taken, left = all[:in.Limit], all[in.Limit:]
	}
	next := map[string]uint64{}
	for k, v := range scanned {
		next[k] = v
	}
	// A stream with candidates left over resumes at its first one.
	for _, c := range left {
		if c.r.Seq < next[c.stream] {
			next[c.stream] = c.r.Seq
		}
	}
	out := FilterOutput{Events: make([]Event, 0, len(taken)), NextToken: encodeToken(next)}
	for _, c := range taken {
		out.Events = append(out.Events, Event{LogStreamName: c.stream, Timestamp: c.r.Time, Message: c.r.Message,
			IngestionTime: c.r.Ingest, EventID: c.stream + "/" + strconv.FormatUint(c.r.Seq, 10)})
	}
	return out, nil
}
