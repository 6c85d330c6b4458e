package daemon

import (
	"fmt"
	"slices"

	"github.com/oneport/oneport/httproute"
	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/config"
)

// reloadRoutes swaps in the routes a reload read, never silently dropping
// routes changed at run time through the admin API:
//   - without a config file, the routes come from the command line, which
//     a reload cannot change; the routes in force, runtime changes
//     included, are kept, and the log says so;
//   - with one, the file is the source of truth; runtime changes that were
//     not persisted are replaced, with a warning naming them.
//
// It runs with s.mu held, which the admin API's route changes also hold.
func (s *server) reloadRoutes(cfg *config.Config, next *httproute.Table) {
	cur := s.handler.Table()
	changed := s.changedAtRuntime(cur)
	if cfg.File() == "" {
		if len(changed) > 0 {
			s.log.Info("reload: routes kept as they are, runtime changes included (there is no config file to read "+
				"them from; they last until oneport stops)", "changed_at_runtime", changed)
		}
		return
	}
	if len(changed) > 0 {
		s.log.Warn("reload: routes changed through the admin API without --persist were replaced by the config file's",
			"file", cfg.File(), "dropped_changes", changed)
	}
	s.handler.SetTable(next)
}

// changedAtRuntime names the routes of cur that differ from what the
// configuration in force (s.cfg) loads: added or changed ones by name, and
// removed ones as "-NAME".
func (s *server) changedAtRuntime(cur *httproute.Table) []string {
	res, err := s.cfg.Validate()
	if err != nil {
		return nil
	}
	loaded := map[string]string{}
	for _, r := range res.Table.Routes() {
		loaded[admin.RouteName(r)] = fmt.Sprint(admin.RouteOf(r))
	}
	var out []string
	for _, r := range cur.Routes() {
		n := admin.RouteName(r)
		if v, ok := loaded[n]; !ok || v != fmt.Sprint(admin.RouteOf(r)) {
			out = append(out, n)
		}
		delete(loaded, n)
	}
	for n := range loaded {
		out = append(out, "-"+n)
	}
	slices.Sort(out)
	return out
}
