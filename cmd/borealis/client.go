package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
)

// clientFlags are the flags every API-calling command shares.
type clientFlags struct {
	home, api, tokenFile, output *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		home:      fs.String("home", envOr("BOREALIS_HOME", defaultHome), "control plane home, where api.json and api-token are; BOREALIS_HOME"),
		api:       fs.String("api", os.Getenv("BOREALIS_API"), "API URL (default: from <home>/api.json); BOREALIS_API"),
		tokenFile: fs.String("token-file", os.Getenv("BOREALIS_TOKEN_FILE"), "bearer token file (default: <home>/api-token); BOREALIS_TOKEN_FILE"),
		output:    fs.String("output", "table", "output format: table or json"),
	}
}

type apiClient struct {
	url, token string
	http       *http.Client
}

// client finds the control plane: --api, else the api.json its home holds.
// connect checks --output before anything is sent, then makes the API client: the first
// steps of every command that calls the API and prints its answer.
func (f clientFlags) connect() (*apiClient, string, error) {
	format, err := outputFormat(*f.output)
	if err != nil {
		return nil, "", err
	}
	c, err := f.client()
	return c, format, err
}

func (f clientFlags) client() (*apiClient, error) {
	url, tokenPath := *f.api, *f.tokenFile
	if url == "" {
		data, err := os.ReadFile(filepath.Join(*f.home, apiInfoFile))
		if err != nil {
			home := *f.home
			if abs, aerr := filepath.Abs(home); aerr == nil {
				home = abs // a relative home is relative to where the command runs, not the repo
			}
			return nil, fmt.Errorf("no control plane is running for home %s (%v): start one with `borealis serve` or `make up`, or point at a running one with --home DIR (BOREALIS_HOME) or --api", home, err)
		}
		var info apiInfo
		if err := json.Unmarshal(data, &info); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(*f.home, apiInfoFile), err)
		}
		url = info.URL
		if tokenPath == "" {
			tokenPath = info.TokenFile
		}
	}
	if tokenPath == "" {
		tokenPath = filepath.Join(*f.home, tokenFile)
	}
	data, err := os.ReadFile(tokenPath)
	if err != nil {
		return nil, fmt.Errorf("reading the API token: %w (pass --token-file)", err)
	}
	return &apiClient{url: strings.TrimRight(url, "/"), token: strings.TrimSpace(string(data)),
		http: &http.Client{Timeout: 3 * time.Minute}}, nil
}

// call sends in (if not nil) as JSON and decodes the answer into out.
func (c *apiClient) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the control plane at %s: %v (is `borealis serve` or `make up` running?)", c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Message == "" {
			return fmt.Errorf("control plane answered %s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		if flagName := flagForField[eb.Error.Field]; flagName != "" {
			return fmt.Errorf("%s: %s (%s)", flagName, eb.Error.Message, eb.Error.Code)
		}
		return fmt.Errorf("%s (%s)", eb.Error.Message, eb.Error.Code)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

var errNoCluster = errors.New("no cluster")

// flagForField maps an API field to the CLI flag that sets it.
var flagForField = map[string]string{
	"Name": "--name", "Readers": "--readers", "MinCapacity": "--min-capacity", "MaxCapacity": "--max-capacity",
	"AutoPause": "--auto-pause", "SecondsUntilAutoPause": "--seconds-until-auto-pause",
	"SecondsBeforeTimeout": "--seconds-before-timeout", "TimeoutAction": "--timeout-action",
	"Port": "--port", "ReaderPort": "--reader-port", "ScalingConfiguration": "modify",
	"DBClusterParameterGroupName": "--db-cluster-parameter-group-name",
	"EnableLogsExports":           "--enable-logs-exports", "LogsExportConfiguration": "--enable-log-types/--disable-log-types",
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
