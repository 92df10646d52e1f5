package nspawn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// With --keep-unit and no host systemd, nspawn splits the cgroup it was
// started in into payload/ and supervisor/ and hands payload/ to the
// container's systemd. Two containers started from one cgroup would share
// payload/ and remove each other's unit cgroups ("Failed at step CGROUP"), so
// each container starts in a cgroup of its own:
// OWN/netns-session-test/RUN/CONTAINER in every hierarchy systemd uses.
const cgroupGroup = "netns-session-test"

// cgroupRoots are OWN/netns-session-test for the cgroup2 hierarchy and, on
// legacy and hybrid hosts, the name=systemd one; set up by TestMain.
var cgroupRoots []string

// findCgroupRoots reads this process's place in the hierarchies systemd
// tracks processes with from /proc/self/cgroup and /proc/self/mountinfo.
func findCgroupRoots() ([]string, error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading own cgroups: %w", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	var roots []string
	for line := range strings.Lines(string(own)) {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var fstype, option string
		switch {
		case parts[0] == "0" && parts[1] == "":
			fstype = "cgroup2"
		case parts[1] == "name=systemd":
			fstype, option = "cgroup", "name=systemd"
		default:
			continue
		}
		mountPoint, mountRoot, ok := findMount(string(mountinfo), fstype, option)
		if !ok {
			continue
		}
		rel, err := filepath.Rel(mountRoot, parts[2])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // our cgroup is not visible under that mount
		}
		roots = append(roots, filepath.Join(mountPoint, rel, cgroupGroup))
	}
	if len(roots) == 0 {
		return nil, errNoCgroup
	}
	return roots, nil
}

// findMount returns the mount point and root of the first mount of fstype
// whose super options include option (if not empty).
func findMount(mountinfo, fstype, option string) (mountPoint, root string, ok bool) {
	for line := range strings.Lines(mountinfo) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		before, after, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		fields, tailFields := strings.Fields(before), strings.Fields(after)
		if len(fields) < 5 || len(tailFields) < 3 || tailFields[0] != fstype {
			continue
		}
		if option != "" && !strings.Contains(","+tailFields[2]+",", ","+option+",") {
			continue
		}
		return fields[4], fields[3], true
	}
	return "", "", false
}

// cgroupsOf returns the cgroup directories of a run (container == "") or of
// one container of it, one per hierarchy.
func cgroupsOf(run, container string) []string {
	dirs := make([]string, len(cgroupRoots))
	for i, root := range cgroupRoots {
		dirs[i] = filepath.Join(root, run, container)
	}
	return dirs
}

// removeCgroups removes each directory and everything under it. Cgroups are
// removed with rmdir, leaves first; a cgroup stays busy for a moment after
// its last process has been reaped.
func removeCgroups(dirs ...string) error {
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing cgroup %s: %w", dir, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := removeCgroups(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		for attempt := 0; ; attempt++ {
			err := syscall.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || attempt == 100 {
				return fmt.Errorf("removing cgroup %s: %w", dir, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// sweepStaleCgroups removes the cgroups of runs that are no longer alive. A
// cgroup that still holds processes is left alone: it belongs to a live run
// whose lock this run cannot see, one with another NETNS_SESSION_CACHE.
func sweepStaleCgroups(runs string) error {
	for _, root := range cgroupRoots {
		entries, err := os.ReadDir(root)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", root, err)
		}
		for _, e := range entries {
			dir := filepath.Join(root, e.Name())
			if e.IsDir() && !runIsLive(filepath.Join(runs, e.Name())) && !holdsProcesses(dir) {
				if err := removeCgroups(dir); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// holdsProcesses reports whether any cgroup in the tree at dir has a process.
func holdsProcesses(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile: nothing in it
		}
		if !d.IsDir() && d.Name() == "cgroup.procs" {
			if procs, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(procs)) > 0 {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}
