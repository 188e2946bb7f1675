package executor

import (
	"maps"
	"testing"
)

// A shared plugin cache gets TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE
// unless the run set it; without a cache nothing changes.
func TestPluginCacheDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env, want map[string]string
	}{
		{"no cache", map[string]string{"A": "1"}, map[string]string{"A": "1"}},
		{"empty cache", map[string]string{pluginCacheEnv: ""}, map[string]string{pluginCacheEnv: ""}},
		{"cache", map[string]string{pluginCacheEnv: "/cache"}, map[string]string{pluginCacheEnv: "/cache", pluginCacheMayBreakEnv: "true"}},
		{"the stack's choice stays", map[string]string{pluginCacheEnv: "/cache", pluginCacheMayBreakEnv: "false"},
			map[string]string{pluginCacheEnv: "/cache", pluginCacheMayBreakEnv: "false"}},
	} {
		pluginCacheDefaults(tc.env)
		if !maps.Equal(tc.env, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.env, tc.want)
		}
	}
}
