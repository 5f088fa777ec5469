package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/paramgroup"
)

func init() {
	commands["parameter-group"] = command{summary: "create, describe, modify, reset and delete cluster parameter groups", run: runParamGroup}
	commands["describe-engine-default-cluster-parameters"] = command{summary: "list the parameters of the default group (family " + paramgroup.Family + ")", run: runEngineDefaults}
}

var paramGroupSubcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"create":   paramGroupCreate,
	"describe": paramGroupDescribe,
	"modify":   paramGroupModify,
	"reset":    paramGroupReset,
	"delete":   paramGroupDelete,
}

func runParamGroup(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage: borealis parameter-group <create|describe|modify|reset|delete> [flags]\n\n"+
			"  create   --name G [--description D] [--family "+paramgroup.Family+"]\n"+
			"  describe [G] [--source user|engine-default|system]   (no G: list the groups)\n"+
			"  modify   G --parameter NAME=VALUE [--parameter ...]\n"+
			"           (or aws style: --parameters \"ParameterName=log_statement,ParameterValue=all\")\n"+
			"  reset    G (--parameter NAME ... | --all)\n"+
			"  delete   G\n\nA cluster uses a group with `borealis cluster create|modify --db-cluster-parameter-group-name G`.")
		if len(args) == 0 {
			return usagef("which parameter-group command? create, describe, modify, reset or delete")
		}
		return nil
	}
	sub, ok := paramGroupSubcommands[args[0]]
	if !ok {
		return usagef("unknown parameter-group command %q: use create, describe, modify, reset or delete", args[0])
	}
	return sub(args[1:], stdout, stderr)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// groupArg takes the group name from --name or the one positional argument.
func groupArg(fs *flag.FlagSet, args []string, name *string, required bool) error {
	positional, err := onePositional(fs, args)
	if err != nil {
		return err
	}
	if positional != "" {
		if *name != "" && *name != positional {
			return usagef("two group names: --name %s and %s", *name, positional)
		}
		*name = positional
	}
	if *name == "" {
		if required {
			return usagef("a parameter group name is required (--name or the first argument)")
		}
		return nil
	}
	if err := paramgroup.ValidateName(*name); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// parseParameters reads NAME=VALUE, or aws's "ParameterName=N,ParameterValue=V[,ApplyMethod=M]".
func parseParameters(list []string) ([]paramgroup.Change, error) {
	var out []paramgroup.Change
	for _, item := range list {
		if strings.Contains(item, "ParameterName=") {
			var c paramgroup.Change
			for _, kv := range strings.Split(item, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				switch k {
				case "ParameterName":
					c.ParameterName = v
				case "ParameterValue":
					c.ParameterValue = v
				case "ApplyMethod":
					// Borealis applies dynamic parameters at once and static ones by a restart.
				default:
					return nil, usagef("--parameters %q: unknown key %q (use ParameterName, ParameterValue, ApplyMethod)", item, k)
				}
			}
			if c.ParameterName == "" {
				return nil, usagef("--parameters %q: ParameterName is missing", item)
			}
			out = append(out, c)
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--parameter %q: use NAME=VALUE", item)
		}
		out = append(out, paramgroup.Change{ParameterName: strings.TrimSpace(k), ParameterValue: v})
	}
	return out, nil
}

func paramGroupCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("parameter-group create", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "group name (required)")
	desc := fs.String("description", "", "description")
	family := fs.String("family", paramgroup.Family, "parameter group family")
	if err := groupArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *family != paramgroup.Family {
		return usagef("--family: unknown family %q: the only family is %s", *family, paramgroup.Family)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ParamGroupBody
	in := api.CreateParamGroupInput{DBClusterParameterGroupName: *name, DBParameterGroupFamily: *family, Description: *desc}
	if err := c.call("POST", "/v1/parameter-groups", in, &body); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(stdout, body)
	}
	return printGroups(stdout, []paramgroup.Group{body.DBClusterParameterGroup})
}

func paramGroupDescribe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("parameter-group describe", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "group name (all groups when omitted)")
	source := fs.String("source", "", "only parameters from this source: user, engine-default or system")
	if err := groupArg(fs, args, name, false); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	switch *source {
	case "", "user", "engine-default", "system":
	default:
		return usagef("--source must be user, engine-default or system, got %q", *source)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if *name == "" {
		var body api.ParamGroupsBody
		if err := c.call("GET", "/v1/parameter-groups", nil, &body); err != nil {
			return err
		}
		if format == "json" {
			return printJSON(stdout, body)
		}
		return printGroups(stdout, body.DBClusterParameterGroups)
	}
	path := "/v1/parameter-groups/" + url.PathEscape(*name)
	if *source != "" {
		path += "?source=" + url.QueryEscape(*source)
	}
	var body api.ParamGroupBody
	if err := c.call("GET", path, nil, &body); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(stdout, body)
	}
	if err := printGroups(stdout, []paramgroup.Group{body.DBClusterParameterGroup}); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return printParameters(stdout, body.Parameters)
}

func paramGroupModify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("parameter-group modify", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "group name (required)")
	var params multiFlag
	fs.Var(&params, "parameter", "NAME=VALUE to set (repeat)")
	fs.Var(&params, "parameters", "aws style: ParameterName=N,ParameterValue=V (repeat)")
	if err := groupArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if len(params) == 0 {
		return usagef("nothing to modify: give --parameter NAME=VALUE")
	}
	changes, err := parseParameters(params)
	if err != nil {
		return err
	}
	// Checked here too, so a typo fails before any call, with the same message as the API's.
	for _, ch := range changes {
		if _, err := paramgroup.Validate(ch.ParameterName, ch.ParameterValue); err != nil {
			return usagef("--parameter %s: %v", ch.ParameterName, err)
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ParamGroupChangeBody
	if err := c.call("PATCH", "/v1/parameter-groups/"+url.PathEscape(*name), api.ModifyParamGroupInput{Parameters: changes}, &body); err != nil {
		return err
	}
	return printChange(stdout, format, body, "set")
}

func paramGroupReset(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("parameter-group reset", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "group name (required)")
	all := fs.Bool("all", false, "reset every parameter to the engine default")
	var params multiFlag
	fs.Var(&params, "parameter", "NAME to reset (repeat)")
	if err := groupArg(fs, args, name, true); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *all == (len(params) > 0) {
		return usagef("give either --parameter NAME (repeatable) or --all")
	}
	in := api.ResetParamGroupInput{ResetAllParameters: *all}
	for _, p := range params {
		in.Parameters = append(in.Parameters, paramgroup.Parameter{ParameterName: p})
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.ParamGroupChangeBody
	if err := c.call("POST", "/v1/parameter-groups/"+url.PathEscape(*name)+"/reset", in, &body); err != nil {
		return err
	}
	return printChange(stdout, format, body, "reset to the default")
}

func paramGroupDelete(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("parameter-group delete", stderr)
	cf := addClientFlags(fs)
	name := fs.String("name", "", "group name (required)")
	if err := groupArg(fs, args, name, true); err != nil {
		return err
	}
	c, format, err := cf.connect()
	if err != nil {
		return err
	}
	var body api.ParamGroupBody
	if err := c.call("DELETE", "/v1/parameter-groups/"+url.PathEscape(*name), nil, &body); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(stdout, body)
	}
	fmt.Fprintf(stdout, "deleted parameter group %s\n", *name)
	return nil
}

func runEngineDefaults(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("describe-engine-default-cluster-parameters", stderr)
	cf := addClientFlags(fs)
	family := fs.String("db-parameter-group-family", paramgroup.Family, "parameter group family")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	format, err := outputFormat(*cf.output)
	if err != nil {
		return err
	}
	if *family != paramgroup.Family {
		return usagef("--db-parameter-group-family: unknown family %q: the only family is %s", *family, paramgroup.Family)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var body api.EngineDefaultsBody
	if err := c.call("GET", "/v1/engine-default-cluster-parameters?family="+url.QueryEscape(*family), nil, &body); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(stdout, body)
	}
	fmt.Fprintf(stdout, "Engine defaults of %s:\n\n", body.EngineDefaults.DBParameterGroupFamily)
	return printParameters(stdout, body.EngineDefaults.Parameters)
}

func printGroups(w io.Writer, gs []paramgroup.Group) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tFAMILY\tDESCRIPTION")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.DBClusterParameterGroupName, g.DBParameterGroupFamily, g.Description)
	}
	return tw.Flush()
}

func printParameters(w io.Writer, ps []paramgroup.Parameter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARAMETER\tVALUE\tSOURCE\tAPPLY TYPE\tTYPE\tALLOWED VALUES\tMODIFIABLE")
	for _, p := range ps {
		mod := "yes"
		if !p.IsModifiable {
			mod = "no (" + p.Owner + ")"
		}
		allowed := p.AllowedValues
		if len(allowed) > 40 {
			allowed = allowed[:37] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ParameterName, dash(p.ParameterValue), p.Source, p.ApplyType, p.DataType, dash(allowed), mod)
	}
	return tw.Flush()
}

func printChange(w io.Writer, format string, body api.ParamGroupChangeBody, verb string) error {
	if format == "json" {
		return printJSON(w, body)
	}
	if len(body.Parameters) == 0 {
		fmt.Fprintf(w, "parameter group %s: nothing to %s\n", body.DBClusterParameterGroupName, verb)
		return nil
	}
	for _, p := range body.Parameters {
		fmt.Fprintf(w, "parameter group %s: %s %s = %s\n", body.DBClusterParameterGroupName, verb, p.ParameterName, p.ParameterValue)
	}
	fmt.Fprintln(w, "clusters using it apply it now (dynamic: reload; static: node restart); see `borealis events`")
	return nil
}
