package settings

// The table: every environment variable Gantry reads, once.
//
// To add one: define it below, next to its kin, with every field an
// operator needs (the commands that read it, Default or DefaultDoc, an
// Example that parses, a one-line Doc, the Kind that checks it); read it
// through the Var (Value, Duration, Bool, Int, …), never with os.Getenv; then
// regenerate the docs with
//
//	go test ./cmd/gantry -run TestConfigurationDoc -update
//
// Each command checks the variables it reads at start, and lists them in
// its --help.

// The commands of Var.Commands: paths below gantry.
const (
	server      = "server"
	dev         = "dev"
	migrate     = "migrate"
	projector   = "projector"
	rebuild     = "projector rebuild"
	scheduler   = "scheduler"
	drain       = "drain"
	launcher    = "launcher"
	runnerImage = "runner-image"
)

// Infrastructure.
var (
	DatabaseURL = define(Var{
		Name: "GANTRY_DATABASE_URL", Commands: []string{dev, server, migrate, projector, rebuild, scheduler, drain},
		DefaultDoc: "`dev`: a private cluster in `<data dir>/postgres`; required otherwise",
		Example:    "postgres://gantry:secret@db:5432/gantry",
		Doc:        "PostgreSQL (14–17) to keep the events and read models in",
		Kind:       PostgresURL(), Secret: true,
	})
	NATSURL = define(Var{
		Name: "GANTRY_NATS_URL", Commands: []string{dev, server, projector, scheduler, drain},
		DefaultDoc: "`dev`: an embedded server on `127.0.0.1:1984` with a generated service password in `<data dir>/nats/service-password`; required otherwise",
		Example:    "nats://gantry:secret@nats:4222",
		Doc:        "NATS server with JetStream, with the service login (docs/nats.md); launchers are sent there too",
		Kind:       URLList("nats", "tls"), Secret: true,
	})
	NATSReplicas = define(Var{
		Name: "GANTRY_NATS_REPLICAS", Commands: []string{server},
		Default: "1", Example: "3",
		Doc:  "replicas of the EVENTS and RUN_LOGS JetStream streams on a NATS cluster, at most its JetStream servers: 3 on three nodes keeps every event through the loss of one (docs/deploy.md); a change rescales the streams at the next start",
		Kind: IntRange(1, 5),
	})
	BlobURL = define(Var{
		Name: "GANTRY_BLOB_URL", Commands: []string{dev, server},
		DefaultDoc: "`dev`: `file://<data dir>/blobs`; required for `server`",
		Example:    "s3://gantry?region=eu-west-1",
		Doc:        "object storage of state versions, run logs and saved workspaces (see Object storage below); the same bucket for every replica",
		Kind:       URL("azblob", "file", "gs", "mem", "s3"), Secret: true,
	})
	SecretsURL = define(Var{
		Name: "GANTRY_SECRETS_URL", Commands: []string{dev, server, drain},
		DefaultDoc: "`dev`: a key created on first start in `<data dir>/secrets.key` (0600); required otherwise",
		Example:    "awskms://alias/gantry?region=eu-west-1",
		Doc:        "the keeper that encrypts secrets, the server's keys, state files and run logs at rest (see Encryption at rest below); chosen once, at install",
		Kind:       URL("awskms", "azurekeyvault", "base64key", "gcpkms", "hashivault", "rsakey"), Secret: true,
	})
	EncryptionRSAKey = define(Var{
		Name: "GANTRY_ENCRYPTION_RSA_PRIVATE_KEY", Commands: []string{dev, server, drain},
		Example: "$(base64 -w0 encryption.pem)",
		Doc:     "the RSA private key (2048 bits or more) of `GANTRY_SECRETS_URL=rsakey://`",
		Kind:    Checked("PEM (PKCS#1 or PKCS#8), or base64 of the PEM on one line; checked when the keeper opens"), Secret: true,
	})
	PGBinDir = define(Var{
		Name: "GANTRY_PG_BINDIR", Commands: []string{dev, Tests},
		DefaultDoc: "found on `PATH`, then the newest `/usr/lib/postgresql/*/bin`",
		Example:    "/usr/lib/postgresql/17/bin",
		Doc:        "directory holding the `initdb` and `postgres` of the private cluster",
		Kind:       Text("directory; it must hold initdb, postgres and pg_ctl"),
	})
)

// Session tokens, API keys and the NATS auth callout.
var (
	SigningKeyFile = define(Var{
		Name: "GANTRY_SIGNING_KEY_FILE", Commands: []string{dev, server},
		DefaultDoc: "`dev`: an Ed25519 key created on first start in `<data dir>/signing-key.pem` (0600); `server` needs it or `GANTRY_SIGNING_KEY`",
		Example:    "/etc/gantry/signing-key.pem",
		Doc:        "PEM private key session tokens are signed with, the same on every replica (`openssl genpkey -algorithm ed25519 -out signing-key.pem`)",
		Kind:       Checked("file of a PEM Ed25519 or ECDSA P-256 private key, PKCS#8 or SEC 1; read and checked at start"),
	})
	SigningKey = define(Var{
		Name: "GANTRY_SIGNING_KEY", Commands: []string{dev, server},
		Example: "$(cat signing-key.pem)",
		Doc:     "the PEM of `GANTRY_SIGNING_KEY_FILE` itself, instead of a file (not both)",
		Kind:    Checked("PEM, as in the file; checked at start"), Secret: true,
	})
	VerifyKeysFile = define(Var{
		Name: "GANTRY_VERIFY_KEYS_FILE", Commands: []string{dev, server},
		Example: "/etc/gantry/old-signing-key.pub.pem",
		Doc:     "PEM public (or private) keys whose session tokens are accepted besides the signing key's: the other key during a rotation (docs/operations.md)",
		Kind:    Checked("file of PEM keys; read and checked at start"),
	})
	VerifyKeys = define(Var{
		Name: "GANTRY_VERIFY_KEYS", Commands: []string{dev, server},
		Example: "$(cat old-signing-key.pub.pem)",
		Doc:     "the PEM of `GANTRY_VERIFY_KEYS_FILE` itself, instead of a file (not both)",
		Kind:    Checked("PEM keys; checked at start"),
	})
	AdminKeyFile = define(Var{
		Name: "GANTRY_ADMIN_KEY_FILE", Commands: []string{server},
		Example: "/var/lib/gantry/admin.key",
		Doc:     "as `--admin-key-file` (the flag wins): where the first admin API key is written (0600) when none is live",
		Kind:    Text("file path"),
	})
	CalloutIssuerSeed = define(Var{
		Name: "GANTRY_NATS_CALLOUT_ISSUER_SEED", Commands: []string{server},
		DefaultDoc: "none: no callout runs; ignored with the embedded NATS",
		Example:    "SAAG…",
		Doc:        "account nkey seed of the NATS auth callout that authenticates pool launchers on an external NATS; its public key is `auth_callout.issuer` (docs/nats.md)",
		Kind:       Checked("nkey account seed (`SA…`); checked at start"), Secret: true,
	})
	CalloutXKeySeed = define(Var{
		Name: "GANTRY_NATS_CALLOUT_XKEY_SEED", Commands: []string{server},
		Example: "SXAM…",
		Doc:     "curve nkey seed whose public key is `auth_callout.xkey`, when the NATS server encrypts callout requests",
		Kind:    Checked("nkey curve seed (`SX…`); needs the issuer seed; checked at start"), Secret: true,
	})
	CalloutAccount = define(Var{
		Name: "GANTRY_NATS_CALLOUT_ACCOUNT", Commands: []string{server},
		Default: "$G", Example: "LAUNCHERS",
		Doc:  "NATS account the callout places launchers in",
		Kind: Text("NATS account name"),
	})
	CalloutUserTTL = define(Var{
		Name: "GANTRY_NATS_CALLOUT_USER_TTL", Commands: []string{server},
		Default: "15m", Example: "5m",
		Doc:  "validity of the launchers' user JWTs: a reset or deleted pool's connections end within it",
		Kind: Duration(),
	})
)

// Observability.
var (
	LogLevel = define(Var{
		Name: "GANTRY_LOG_LEVEL", Commands: []string{dev, server, projector, rebuild, scheduler, drain, launcher},
		Default: "info", Example: "debug",
		Doc:  "the least severe level logged; logs are JSON lines on stderr",
		Kind: Enum("debug", "info", "warn", "error"),
	})
	InstrumentationListen = define(Var{
		Name: "GANTRY_INSTRUMENTATION_LISTEN", Commands: []string{dev, server},
		DefaultDoc: "`dev`: `127.0.0.1:1985`; `server`: `:8080`",
		Example:    "0.0.0.0:9090",
		Doc:        "address of the probes (`/startup`, `/readiness`, `/liveness`) and Prometheus `/metrics`, as `--instrumentation-listen` (the flag wins)",
		Kind:       HostPort(),
	})
	OTLPEndpoint = define(Var{
		Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Commands: []string{dev, server, launcher},
		DefaultDoc: "none: tracing off",
		Example:    "http://collector:4318",
		Doc:        "OTLP collector base URL: set, traces are exported (to `<url>/v1/traces` over HTTP)",
		Kind:       URL("http", "https"),
	})
	OTLPTracesEndpoint = define(Var{
		Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Commands: []string{dev, server, launcher},
		Example: "http://collector:4318/v1/traces",
		Doc:     "full traces URL; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`",
		Kind:    URL("http", "https"),
	})
	OTLPProtocol = define(Var{
		Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Commands: []string{dev, server, launcher},
		Default: "http/protobuf", Example: "grpc",
		Doc:  "OTLP transport of the traces",
		Kind: Enum("http/protobuf", "grpc"),
	})
	OTLPTracesProtocol = define(Var{
		Name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Commands: []string{dev, server, launcher},
		DefaultDoc: "`OTEL_EXPORTER_OTLP_PROTOCOL`",
		Example:    "grpc",
		Doc:        "the same for traces only; wins over `OTEL_EXPORTER_OTLP_PROTOCOL`",
		Kind:       Enum("http/protobuf", "grpc"),
	})
	OTelSDKDisabled = define(Var{
		Name: "OTEL_SDK_DISABLED", Commands: []string{dev, server, launcher},
		Default: "false", Example: "true",
		Doc:  "`true` turns tracing off whatever the endpoint",
		Kind: Bool(),
	})
	OTelTracesExporter = define(Var{
		Name: "OTEL_TRACES_EXPORTER", Commands: []string{dev, server, launcher},
		Default: "otlp", Example: "none",
		Doc:  "`none` turns tracing off whatever the endpoint",
		Kind: Enum("otlp", "none"),
	})
)

// The CLI.
var (
	Server = define(Var{
		Name: "GANTRY_SERVER", Commands: []string{CLI},
		Default:    "http://127.0.0.1:1983",
		DefaultDoc: "the credentials file's server, else `http://127.0.0.1:1983`",
		Example:    "https://gantry.example.com",
		Doc:        "API URL, as `--server` (the flag wins)",
		Kind:       URL("http", "https"),
	})
	Token = define(Var{
		Name: "GANTRY_TOKEN", Commands: []string{CLI, launcher},
		DefaultDoc: "CLI: the credentials file's key; required by `launcher`",
		Example:    "$(cat admin.key)",
		Doc:        "CLI: the API key (or session token) to call the API with, as `--token`; `launcher`: the pool token `gantry pool create` printed",
		Kind:       Checked("token; checked by the server (CLI) or at start (launcher)"), Secret: true,
	})
	ConfigDir = define(Var{
		Name: "GANTRY_CONFIG_DIR", Commands: []string{CLI, dev},
		DefaultDoc: "`gantry` in the user's configuration directory (`~/.config/gantry`)",
		Example:    "/home/ci/.gantry",
		Doc:        "where the CLI's `credentials.json` (server URL and API key) lives; `dev` writes its admin key there",
		Kind:       Text("directory"),
	})
	NoColor = define(Var{
		Name: "NO_COLOR", Commands: []string{CLI},
		DefaultDoc: "unset: colour on a terminal only, never in a pipe or a file",
		Example:    "1",
		Doc:        "when set (not empty), no output gets ANSI colour, even on a terminal",
		Kind:       Text("any text: set is what counts"),
	})
)

// Launchers: a pool's workers (docs/workers.md).
var (
	PoolPrivateKey = define(Var{
		Name: "GANTRY_POOL_PRIVATE_KEY", Commands: []string{launcher},
		DefaultDoc: "required",
		Example:    "$(base64 -w0 pool.key)",
		Doc:        "base64 of the PEM private key the pool's CSR was made with",
		Kind:       Checked("base64 of a PEM RSA or ECDSA private key (PKCS#1, PKCS#8 or SEC 1) matching the token's certificate; checked at start"), Secret: true,
	})
	LauncherExecutor = define(Var{
		Name: "GANTRY_LAUNCHER_EXECUTOR", Commands: []string{launcher},
		DefaultDoc: "`docker` where a Docker engine answers, else `process`",
		Example:    "process",
		Doc:        "how runs run: in containers of the stack's runner image, or as processes on this host",
		Kind:       Enum("docker", "process"),
	})
	LauncherWorkDir = define(Var{
		Name: "GANTRY_LAUNCHER_WORK_DIR", Commands: []string{launcher},
		DefaultDoc: "the temp dir",
		Example:    "/var/lib/gantry-launcher",
		Doc:        "where each run's fresh workspace is made, and where unanswered reports are kept (`gantry-reports/<pool>/<worker>/`); keep it across restarts (a volume)",
		Kind:       Text("absolute directory"),
	})
	LauncherRepoCacheDir = define(Var{
		Name: "GANTRY_LAUNCHER_REPO_CACHE_DIR", Commands: []string{launcher},
		DefaultDoc: "`<work dir>/gantry-repos`",
		Example:    "/var/cache/gantry-repos",
		Doc:        "where the worker keeps its repository cache (see \"The repository cache\" in docs/workers.md); `off`: the repository is cloned for every run",
		Kind:       AbsDirOr("off"),
	})
	LauncherLogsTimeout = define(Var{
		Name: "GANTRY_LAUNCHER_LOGS_TIMEOUT", Commands: []string{launcher},
		Default: "7m", Example: "15m",
		Doc:  "fail a run whose process prints nothing for this long",
		Kind: Duration(),
	})
	LauncherRunTimeout = define(Var{
		Name: "GANTRY_LAUNCHER_RUN_TIMEOUT", Commands: []string{launcher},
		Default: "70m", Example: "3h",
		Doc:  "maximum run time on the worker",
		Kind: Duration(),
	})
	LauncherShutdownGrace = define(Var{
		Name: "GANTRY_LAUNCHER_SHUTDOWN_GRACE", Commands: []string{launcher},
		Default: "90s", Example: "5m",
		Doc:  "how long a run may go on after SIGTERM before it is failed",
		Kind: Duration(),
	})
	LauncherRunInitializationPolicy = define(Var{
		Name: "GANTRY_LAUNCHER_RUN_INITIALIZATION_POLICY", Commands: []string{launcher},
		Example: "/etc/gantry/policy.rego",
		Doc:     "a Rego file (package `gantry`, rule `deny`) evaluated against each run's metadata before its first phase; a denial fails the run with the policy's messages (see \"Run initialization policy\" in docs/workers.md)",
		Kind:    Checked("file of a Rego v1 module; one that cannot be read or does not compile stops the launcher at start"),
	})
	MaskEnvs = define(Var{
		Name: "GANTRY_MASK_ENVS", Commands: []string{launcher},
		Example: "AWS_SECRET_ACCESS_KEY,TF_VAR_db_password",
		Doc:     "whitelisted variables whose values never appear in run logs",
		Kind:    NameList(),
	})
	WhitelistEnvs = define(Var{
		Name: "GANTRY_WHITELIST_ENVS", Commands: []string{launcher},
		Example: "AWS_REGION,ro_READ_TOKEN,wo_AWS_SECRET_ACCESS_KEY",
		Doc:     "the launcher's variables passed to runs; `ro_`/`wo_` prefixes: read-only or write phases only",
		Kind:    Checked("comma-separated variable names, each optionally prefixed `ro_` or `wo_`; checked at start"),
	})
	Metadata = define(Var{
		Name: "GANTRY_METADATA_", Prefix: true, Commands: []string{launcher},
		Example: "GANTRY_METADATA_zone=eu-west-1a",
		Doc:     "`GANTRY_METADATA_<key>=<value>`: metadata sent at registration, shown by `gantry pool workers`",
		Kind:    Text("any text; the key must not be empty"),
	})
	RunLogsOnStdout = define(Var{
		Name: "GANTRY_RUN_LOGS_ON_STANDARD_OUTPUT_ENABLED", Commands: []string{launcher},
		Default: "false", Example: "true",
		Doc:  "also write run logs to stdout as JSON lines with `run_id`, `stack_id`, `phase`, `ts`, `msg`",
		Kind: Bool(),
	})
	SensitiveOutputUpload = define(Var{
		Name: "GANTRY_SENSITIVE_OUTPUT_UPLOAD_ENABLED", Commands: []string{launcher},
		Default: "false", Example: "true",
		Doc:  "also upload the values of sensitive outputs, sealed to the server's outputs key (see \"Run outputs\" in docs/workers.md); otherwise only their names are recorded",
		Kind: Bool(),
	})
	Debug = define(Var{
		Name: "GANTRY_DEBUG", Commands: []string{launcher},
		Default: "false", Example: "true",
		Doc:  "print every command a run executes into its log",
		Kind: Bool(),
	})
	Path = define(Var{
		Name: "PATH", Commands: []string{dev, launcher},
		DefaultDoc: "the process's",
		Example:    "/usr/local/bin:/usr/bin:/bin",
		Doc:        "runs get the launcher's: the stack's tool (`terraform` or `tofu`), `git` and `sh` must be on it (with the Docker executor, `git` runs on the host and the tool is mounted into the container from there)",
		Kind:       Text("directories separated by `:`"),
	})
	LauncherSecretsFD = define(Var{
		Name: "GANTRY_LAUNCHER_SECRETS_FD", Commands: []string{launcher}, Internal: true,
		Example: "3",
		Doc:     "internal: the pipe a launcher hands its token and key to its re-executed self over; never set it",
		Kind:    Int(0),
	})
)

// The Docker executor, of launchers and of `gantry dev --executor docker`.
var (
	DockerHost = define(Var{
		Name: "DOCKER_HOST", Commands: []string{launcher, dev, runnerImage},
		Default: "unix:///var/run/docker.sock", Example: "tcp://docker:2375",
		Doc:  "the Docker engine's address (`tcp://` without TLS)",
		Kind: URL("unix", "tcp", "npipe"),
	})
	DefaultRunnerImage = define(Var{
		Name: "GANTRY_DEFAULT_RUNNER_IMAGE", Commands: []string{launcher, dev},
		Default:    "gantry/runner:1",
		DefaultDoc: "`gantry/runner:1`, built at start (from the host's busybox) when missing",
		Example:    "registry.example.com/gantry/runner:1",
		Doc:        "runner image of stacks without one (`gantry stack create --runner-image`)",
		Kind:       Checked("image reference; checked at start"),
	})
	DockerConfigDir = define(Var{
		Name: "GANTRY_DOCKER_CONFIG_DIR", Commands: []string{launcher, dev},
		DefaultDoc: "none: pulls are anonymous",
		Example:    "/etc/gantry/docker",
		Doc:        "a Docker client configuration directory (`docker login` fills its `config.json`): the registry credentials used to pull runner images",
		Kind:       Checked("directory holding config.json; credential helpers (`credsStore`) are refused; read at start"),
	})
	WorkerExtraMounts = define(Var{
		Name: "GANTRY_WORKER_EXTRA_MOUNTS", Commands: []string{launcher, dev},
		Example: "/etc/ssl/certs:/etc/ssl/certs:ro",
		Doc:     "host paths mounted into every run container",
		Kind:    Checked("`/host/path:/container/path[:ro]`, comma-separated, absolute; a host path that does not exist stops the launcher at start"),
	})
	WorkerROExtraMounts = define(Var{
		Name: "GANTRY_WORKER_RO_EXTRA_MOUNTS", Commands: []string{launcher, dev},
		Example: "/srv/plan-cache:/cache",
		Doc:     "the same, only into the containers of read-only phases: proposed runs, and the initializing and planning of tracked runs",
		Kind:    Checked("as `GANTRY_WORKER_EXTRA_MOUNTS`"),
	})
	WorkerWOExtraMounts = define(Var{
		Name: "GANTRY_WORKER_WO_EXTRA_MOUNTS", Commands: []string{launcher, dev},
		Example: "/srv/apply-secrets:/secrets:ro",
		Doc:     "the same, only into the containers of write phases: applying, and every phase of a task",
		Kind:    Checked("as `GANTRY_WORKER_EXTRA_MOUNTS`"),
	})
	WorkerNetwork = define(Var{
		Name: "GANTRY_WORKER_NETWORK", Commands: []string{launcher, dev},
		Default: "bridge", Example: "gantry-runs",
		Doc:  "the network the run containers join",
		Kind: Checked("network name; it must exist and have a gateway address on this host (or be `host`); checked at start"),
	})
	WorkerRuntime = define(Var{
		Name: "GANTRY_WORKER_RUNTIME", Commands: []string{launcher, dev},
		DefaultDoc: "the engine's default",
		Example:    "runsc",
		Doc:        "the engine runtime of the run containers",
		Kind:       Checked("runtime name (`runc`, `runsc`, …) the engine has; checked at start"),
	})
	WorkerUser = define(Var{
		Name: "GANTRY_WORKER_USER", Commands: []string{launcher, dev},
		DefaultDoc: "`10001:10001`, or the launcher's own uid:gid when it does not run as root",
		Example:    "2000:2000",
		Doc:        "the user the run containers run as",
		Kind:       Checked("numeric `uid:gid`, never `0`; checked at start"),
	})
)

// DockerExecutor are the Docker executor's settings (docs/workers.md lists
// them apart from the launcher's others).
var DockerExecutor = []*Var{DockerHost, DefaultRunnerImage, DockerConfigDir, WorkerExtraMounts, WorkerROExtraMounts,
	WorkerWOExtraMounts, WorkerNetwork, WorkerRuntime, WorkerUser}

// The test suite's own (its helpers read them).
var (
	TestDatabaseURL = define(Var{
		Name: "GANTRY_TEST_DATABASE_URL", Commands: []string{Tests},
		DefaultDoc: "a throwaway cluster per test binary",
		Example:    "postgres://postgres@127.0.0.1:5432/postgres",
		Doc:        "run the tests against this server (it needs `CREATEDB`)",
		Kind:       PostgresURL(), Secret: true,
	})
	Versitygw = define(Var{
		Name: "GANTRY_VERSITYGW", Commands: []string{Tests},
		DefaultDoc: "`versitygw` on `PATH`, then `.gantry/tools/bin/versitygw` (built by `scripts/prereqs`, or by the tests outside CI)",
		Example:    "/usr/local/bin/versitygw",
		Doc:        "the `versitygw` binary of the S3 tests",
		Kind:       Text("file path"),
	})
	CI = define(Var{
		Name: "CI", Commands: []string{Tests},
		Example: "true",
		Doc:     "`true`: a test whose real part (Docker engine, versitygw, …) is missing fails rather than skipping or building it",
		Kind:    Text("`true` or anything else"),
	})
	BenchSeconds = define(Var{
		Name: "GANTRY_BENCH_SECONDS", Commands: []string{Benchmarks},
		Default: "10", Example: "30",
		Doc:  "seconds each side of a comparison runs",
		Kind: Int(1),
	})
)
