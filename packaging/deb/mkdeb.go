//go:build ignore

// Command mkdeb builds hookd's Debian package with nfpm, from the repository root:
//
//	go run -modfile=packaging/deb/tools.mod packaging/deb/mkdeb.go -version 0.1.0
//
// It builds the binary (with that version), adapts the repository's systemd unit
// (/usr/bin/hookd) and example configuration (database under /var/lib/hookd),
// and packages them as packaging/deb/nfpm.yaml says. It prints the package's path.
// (It is a file of its own, built only by go run, so that hookd's go.mod does not
// carry nfpm: packaging/deb/tools.mod does.)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

// debVersion is what dpkg accepts as an upstream version without a revision.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

func run(args []string) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	version := fs.String("version", "", "package and binary version, e.g. 0.1.0 (required)")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH to build for (arm: ARMv7, Debian's armhf)")
	out := fs.String("o", "dist", "folder for the package")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !debVersion.MatchString(*version) {
		return fmt.Errorf("-version: want a Debian upstream version such as 0.1.0 or 0.2.0~rc1, got %q", *version)
	}
	if _, err := os.Stat("packaging/deb/nfpm.yaml"); err != nil {
		return errors.New("run from the repository root (packaging/deb/nfpm.yaml not found)")
	}
	work, err := os.MkdirTemp("", "hookd-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bin := filepath.Join(work, "hookd")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+*version, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+*arch)
	pkgArch := *arch // nfpm names the Debian architecture of most GOARCHs itself
	if *arch == "arm" {
		// Debian's armhf is ARMv7 with hardware floating point, nfpm's arm7; a bare
		// "arm" is no Debian architecture, and dpkg would refuse the package.
		build.Env = append(build.Env, "GOARM=7")
		pkgArch = "arm7"
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	unit, err := adapt("hookd.service", func(s string) (string, error) {
		if !strings.Contains(s, "/usr/local/bin/hookd") {
			return "", errors.New("hookd.service no longer runs /usr/local/bin/hookd: update mkdeb.go")
		}
		s = strings.ReplaceAll(s, "/usr/local/bin/hookd", "/usr/bin/hookd")
		// The comment above [Unit] tells how to install by hand; the package does that.
		i := strings.Index(s, "[Unit]")
		if i < 0 {
			return "", errors.New("hookd.service has no [Unit] section")
		}
		return "# hookd's systemd unit, from the hookd Debian package. Start it after editing\n" +
			"# /etc/hookd/hookd.toml: systemctl enable --now hookd\n" + s[i:], nil
	})
	if err != nil {
		return err
	}
	conf, err := adapt("config.example.toml", func(s string) (string, error) {
		// The package's state directory is where the example keeps the database.
		const want = `path = "/var/lib/hookd/hookd.db"`
		if strings.Count(s, want) != 1 {
			return "", fmt.Errorf("config.example.toml has no single line %s: update mkdeb.go", want)
		}
		return "# hookd's configuration, from the hookd Debian package (a conffile: your edits\n" +
			"# are kept on upgrade). Check it with: hookd check-config -config /etc/hookd/hookd.toml\n\n" + s, nil
	})
	if err != nil {
		return err
	}
	paths := map[string]string{"HOOKD_BINARY": bin, "HOOKD_UNIT": filepath.Join(work, "hookd.service"),
		"HOOKD_CONFIG": filepath.Join(work, "hookd.toml"), "HOOKD_VERSION": *version, "HOOKD_ARCH": pkgArch}
	if err := os.WriteFile(paths["HOOKD_UNIT"], []byte(unit), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(paths["HOOKD_CONFIG"], []byte(conf), 0o644); err != nil {
		return err
	}

	cfg, err := nfpm.ParseFileWithEnvMapping("packaging/deb/nfpm.yaml", func(k string) string {
		if v, ok := paths[k]; ok {
			return v
		}
		return os.Getenv(k)
	})
	if err != nil {
		return fmt.Errorf("packaging/deb/nfpm.yaml: %w", err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return fmt.Errorf("packaging/deb/nfpm.yaml: %w", err)
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	target := filepath.Join(*out, pkg.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	info.Target = target
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return fmt.Errorf("package: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(target)
	return nil
}

// adapt reads a file of the repository and returns it changed by f.
func adapt(path string, f func(string) (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return f(string(b))
}
