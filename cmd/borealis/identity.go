package main

import (
	"flag"
	"os"

	"github.com/borealisdb/borealis/controlplane/cluster"
)

// The master-user, database and deletion-protection flags of `cluster create`, `cluster
// modify` and `up`, named as aws rds create-db-cluster / modify-db-cluster name them.

func init() {
	for field, f := range map[string]string{
		"MasterUsername": "--master-username", "MasterUserPassword": "--master-user-password",
		"ManageMasterUserPassword": "--manage-master-user-password", "DatabaseName": "--database-name",
		"DeletionProtection": "--deletion-protection", "RotateMasterUserPassword": "--rotate-master-user-password",
	} {
		flagForField[field] = f
	}
}

type masterUserFlags struct {
	username, password, database *string
	manage, deletionProtection   *bool
}

// addMasterUserFlags registers the create-time identity flags; withEnv takes the defaults from
// BOREALIS_MASTER_USER, BOREALIS_MASTER_PASSWORD and BOREALIS_DATABASE (for `up`, whose
// container use passes secrets by environment).
func addMasterUserFlags(fs *flag.FlagSet, withEnv bool) masterUserFlags {
	env := func(name string) string {
		if withEnv {
			return os.Getenv(name)
		}
		return ""
	}
	envNote := func(name string) string {
		if withEnv {
			return "; " + name
		}
		return ""
	}
	return masterUserFlags{
		username: fs.String("master-username", env("BOREALIS_MASTER_USER"),
			"the clients' login role, not a superuser (default "+cluster.DefaultMasterUsername+")"+envNote("BOREALIS_MASTER_USER")),
		password: fs.String("master-user-password", env("BOREALIS_MASTER_PASSWORD"),
			"its password, 8-128 printable ASCII characters but / \" @ and space (default: generated, see --manage-master-user-password)"+envNote("BOREALIS_MASTER_PASSWORD")),
		manage: fs.Bool("manage-master-user-password", false,
			"generate the password and keep it in a 0600 file that describe names (MasterUserSecret)"),
		database: fs.String("database-name", env("BOREALIS_DATABASE"),
			"database to create, owned by the master user"+envNote("BOREALIS_DATABASE")),
		deletionProtection: fs.Bool("deletion-protection", false, "refuse `cluster delete` until turned off with modify"),
	}
}

func (f masterUserFlags) input() cluster.MasterUserInput {
	return cluster.MasterUserInput{MasterUsername: *f.username, MasterUserPassword: *f.password,
		ManageMasterUserPassword: *f.manage, DatabaseName: *f.database, DeletionProtection: *f.deletionProtection}
}

type modifyIdentityFlags struct {
	password                   *string
	rotate, protect, noProtect *bool
}

func addModifyIdentityFlags(fs *flag.FlagSet) modifyIdentityFlags {
	return modifyIdentityFlags{
		password:  fs.String("master-user-password", "", "set a new master user password (rotates it on the nodes now)"),
		rotate:    fs.Bool("rotate-master-user-password", false, "generate a new managed password into the file describe names"),
		protect:   fs.Bool("deletion-protection", false, "turn deletion protection on"),
		noProtect: fs.Bool("no-deletion-protection", false, "turn deletion protection off"),
	}
}

// visit fills in from the flags that were set; false with a usage error for a contradiction.
func (f modifyIdentityFlags) visit(name string, in *cluster.ModifyInput) error {
	switch name {
	case "master-user-password":
		in.MasterUserPassword = f.password
	case "rotate-master-user-password":
		in.RotateMasterUserPassword = f.rotate
	case "deletion-protection":
		in.DeletionProtection = f.protect
	case "no-deletion-protection":
		if in.DeletionProtection != nil {
			return usagef("--deletion-protection and --no-deletion-protection contradict each other")
		}
		off := !*f.noProtect
		in.DeletionProtection = &off
	}
	return nil
}
