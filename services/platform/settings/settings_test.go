package settings

import (
	"strings"
	"testing"
	"time"
)

// Every row is complete: a one-line description, the commands that read it,
// an example and a default its own kind accepts.
func TestTableRowsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range All() {
		if v.Name == "" || seen[v.Name] {
			t.Errorf("%q: empty or repeated name", v.Name)
		}
		seen[v.Name] = true
		if len(v.Commands) == 0 {
			t.Errorf("%s: no command reads it", v.Name)
		}
		if v.Doc == "" || strings.ContainsAny(v.Doc+v.DefaultDoc+v.Kind.Format, "\n|") {
			t.Errorf("%s: description, default or format missing or not one table cell", v.Name)
		}
		if v.Example == "" || v.Kind.Format == "" {
			t.Errorf("%s: no example or no format", v.Name)
		}
		one := func(value string) Getenv {
			return func(name string) string {
				if name == v.Name {
					return value
				}
				return ""
			}
		}
		if !v.Prefix {
			if err := v.Check(one(v.Example)); err != nil {
				t.Errorf("%s: its example is refused: %v", v.Name, err)
			}
		}
		if v.Default != "" {
			if err := v.Check(one(v.Default)); err != nil {
				t.Errorf("%s: its default is refused: %v", v.Name, err)
			}
		}
	}
}

func TestKindsNameTheVariableAndTheProblem(t *testing.T) {
	for _, tc := range []struct {
		v     *Var
		value string
		want  string
	}{
		{LauncherRunTimeout, "soon", `GANTRY_LAUNCHER_RUN_TIMEOUT: "soon" is not a duration such as 7m or 1h30m`},
		{LauncherRunTimeout, "-5m", `GANTRY_LAUNCHER_RUN_TIMEOUT: "-5m" must be positive`},
		{Debug, "maybe", `GANTRY_DEBUG: "maybe" is not a boolean (true or false)`},
		{LogLevel, "loud", `GANTRY_LOG_LEVEL: "loud" is not one of debug, info, warn, error`},
		{OTLPEndpoint, "ftp://collector", `OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://collector" has scheme "ftp": want http or https`},
		{OTLPEndpoint, "collector:4318", `OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" is not a URL: want http://… or https://…`},
		{InstrumentationListen, "8080", `GANTRY_INSTRUMENTATION_LISTEN: "8080" is not host:port`},
		{MaskEnvs, "A,1B", `GANTRY_MASK_ENVS: "A,1B" lists "1B", which is not a variable name`},
		{BenchSeconds, "-3", `GANTRY_BENCH_SECONDS: "-3" must be at least 1`},
		{BenchSeconds, "ten", `GANTRY_BENCH_SECONDS: "ten" is not an integer`},
		// A secret's value is never quoted.
		{DatabaseURL, "mysql://root:hunter2@db/gantry", `GANTRY_DATABASE_URL: the value has scheme "mysql": want postgres or postgresql`},
		{NATSURL, "nats://a:4222,http://b:hunter2@c", `GANTRY_NATS_URL: the value has scheme "http": want nats or tls`},
	} {
		err := tc.v.Check(func(string) string { return tc.value })
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%q: %v, want %s", tc.v.Name, tc.value, err, tc.want)
		}
	}
	for _, good := range []struct {
		v     *Var
		value string
	}{
		{LogLevel, "WARN"}, {DatabaseURL, "host=db dbname=gantry"}, {NATSURL, "nats://a:4222, nats://b:4222"},
		{InstrumentationListen, ":8080"}, {MaskEnvs, "A, B_2,"},
	} {
		if err := good.v.Check(func(string) string { return good.value }); err != nil {
			t.Errorf("%s=%q refused: %v", good.v.Name, good.value, err)
		}
	}
}

func TestTypedValuesAndDefaults(t *testing.T) {
	env := environ("GANTRY_LAUNCHER_RUN_TIMEOUT=3h", "GANTRY_DEBUG=1", "GANTRY_BENCH_SECONDS=3")
	if d, err := LauncherRunTimeout.Duration(env); d != 3*time.Hour || err != nil {
		t.Errorf("run timeout %v, %v", d, err)
	}
	if d, err := LauncherLogsTimeout.Duration(env); d != 7*time.Minute || err != nil {
		t.Errorf("logs timeout (default) %v, %v", d, err)
	}
	if on, err := Debug.Bool(env); !on || err != nil {
		t.Errorf("debug %v, %v", on, err)
	}
	if on, err := RunLogsOnStdout.Bool(env); on || err != nil {
		t.Errorf("run logs (default) %v, %v", on, err)
	}
	if n, err := BenchSeconds.Int(env); n != 3 || err != nil {
		t.Errorf("bench seconds %d, %v", n, err)
	}
	if s := CalloutAccount.Value(env); s != "$G" {
		t.Errorf("callout account (default) %q", s)
	}
	if got := For("runner-image"); len(got) != 1 || got[0] != DockerHost {
		t.Errorf("runner-image reads %v", got)
	}
	for _, v := range For("launcher") {
		if v.Internal {
			t.Errorf("For lists the internal %s", v.Name)
		}
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	env := environ("GANTRY_LOG_LEVEL=loud", "GANTRY_NATS_CALLOUT_USER_TTL=0s")
	err := Check(env, For("server")...)
	if err == nil || !strings.Contains(err.Error(), "GANTRY_LOG_LEVEL") || !strings.Contains(err.Error(), "GANTRY_NATS_CALLOUT_USER_TTL") {
		t.Errorf("Check: %v", err)
	}
	if err := Check(env, For("runner-image")...); err != nil {
		t.Errorf("runner-image does not read them: %v", err)
	}
}

// environ is the Getenv of "NAME=value" pairs.
func environ(pairs ...string) Getenv {
	m := map[string]string{}
	for _, kv := range pairs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(name string) string { return m[name] }
}
