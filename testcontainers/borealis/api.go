package borealis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
)

// Description is the cluster as the control plane describes it (Aurora's DescribeDBClusters shape).
type Description = cluster.Description

// ModifyInput is the body of Modify: the serverless configuration's fields, nil when unchanged.
type ModifyInput = cluster.ModifyInput

// ErrNotSupported is returned when the control plane in the image has no API for a call (an
// image older than the call); errors.Is(err, ErrNotSupported) tells it from a failed call.
var ErrNotSupported = errors.New("not supported by this control plane")

// APIError is an error answer of the control plane.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("borealis API: %s (%s, HTTP %d)", e.Message, e.Code, e.Status)
	if e.Field != "" {
		s += " field " + e.Field
	}
	return s
}

// Client calls the control plane's API of one container's cluster.
type Client struct {
	baseURL, token, cluster string
	http                    *http.Client
}

// API returns a client for the container's control plane, authenticated with its token.
func (c *Container) API(ctx context.Context) (*Client, error) {
	u, err := c.APIURL(ctx)
	if err != nil {
		return nil, err
	}
	if c.apiToken == "" {
		return nil, errors.New("borealis: no API token known for this container (set BOREALIS_API_TOKEN or use Run)")
	}
	return NewClient(u, c.apiToken, ClusterName), nil
}

// NewClient is a client for the API at baseURL (e.g. http://127.0.0.1:8433) with a bearer token,
// acting on the named cluster.
func NewClient(baseURL, token, clusterName string) *Client {
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), token: token, cluster: clusterName,
		http: &http.Client{Timeout: 3 * time.Minute}}
}

// Describe returns the cluster's description.
func (cl *Client) Describe(ctx context.Context) (Description, error) {
	var out api.ClusterBody
	err := cl.do(ctx, http.MethodGet, cl.clusterPath(""), nil, &out, "")
	return out.DBCluster, err
}

// ModifyCapacity sets the serverless capacity range in ACUs.
func (cl *Client) ModifyCapacity(ctx context.Context, minACU, maxACU float64) (Description, error) {
	var out api.ClusterBody
	err := cl.do(ctx, http.MethodPatch, cl.clusterPath(""), cluster.ModifyInput{MinCapacity: &minACU, MaxCapacity: &maxACU}, &out, "")
	return out.DBCluster, err
}

// Modify changes the serverless configuration (nil fields stay as they are).
func (cl *Client) Modify(ctx context.Context, in cluster.ModifyInput) (Description, error) {
	var out api.ClusterBody
	err := cl.do(ctx, http.MethodPatch, cl.clusterPath(""), in, &out, "")
	return out.DBCluster, err
}

// WaitStatus polls Describe until the cluster's status is want, ctx ends, or the control plane
// fails to answer.
func (cl *Client) WaitStatus(ctx context.Context, want string) (Description, error) {
	for {
		d, err := cl.Describe(ctx)
		if err == nil && d.Status == want {
			return d, nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return d, err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("cluster status is %q", d.Status)
			}
			return d, fmt.Errorf("waiting for cluster %s to be %s: %w (%v)", cl.cluster, want, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (cl *Client) clusterPath(suffix string) string {
	return "/v1/clusters/" + url.PathEscape(cl.cluster) + suffix
}

// do sends in as JSON (when not nil) and decodes the answer into out (when not nil). feature names
// the call for the error when the control plane has no such route.
func (cl *Client) do(ctx context.Context, method, path string, in, out any, feature string) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.baseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("borealis API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		// The mux answers an unknown route with code NotFound; a missing cluster has its own code.
		if feature != "" && (eb.Error.Code == "NotFound" || resp.StatusCode == http.StatusMethodNotAllowed) {
			return fmt.Errorf("borealis API: %s (%s %s): %w; the image's control plane predates it, rebuild the image with `make image`", feature, method, path, ErrNotSupported)
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("borealis API %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}
