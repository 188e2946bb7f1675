package main

import (
	"bytes"
	"context"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	"github.com/gantryhq/gantry/domain/apikey"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// screenshotsEnv names the directory where TestWebUIInABrowser saves
// screenshots of the main pages (relative paths from the repository's
// root): GANTRY_UI_SCREENSHOTS=docs/ui.
const screenshotsEnv = "GANTRY_UI_SCREENSHOTS"

// uiHook prints lines a second apart before the plan, one in green, so
// that the test sees them arrive in the page while the run plans.
const uiHook = `echo "tick 1"; sleep 1; echo "tick 2"; sleep 1; printf '\033[32mtick 3 in green\033[0m\n'; sleep 1`

// chromiumPath finds Debian's chromium (scripts/prereqs installs it); under
// CI=true its absence fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not on PATH: run scripts/prereqs (apt-get install chromium)")
		}
		t.Skip("chromium is not on PATH: run scripts/prereqs (apt-get install chromium)")
	}
	return path
}

// browser drives one headless Chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory; "" takes none
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.WindowSize(1280, 800),
		// CI may run as a user without the namespaces of its sandbox.
		chromedp.NoSandbox)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b.shot = dir
	}
	// The first action starts the browser, which lives as long as the
	// context of that action: b.ctx, not a shorter one.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// do runs steps, bounded by e2eTimeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs one action and returns its value, bounded by e2eTimeout.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	return get(b, "count "+sel, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(get(b, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// until waits, up to timeout, for the JavaScript expression to be true.
func (b *browser) until(timeout time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			b.t.Fatalf("browser: %s did not happen in %s (err %v); the page shows:\n%s", what, timeout, err, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the viewport as <name>.png when screenshots are on.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shot == "" {
		return
	}
	shot := get(b, "screenshot "+name, chromedp.CaptureScreenshot())
	// Kept small for the repository: 216 web-safe colours suit these pages.
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	pal := image.NewPaletted(img.Bounds(), palette.WebSafe)
	draw.Draw(pal, img.Bounds(), img, image.Point{}, draw.Src)
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, pal); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), out.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// The web UI in a real browser: gantry dev's one-time link signs the admin
// in; a run triggered from the stack's page shows its log lines as the plan
// prints them, is confirmed from the page and seen FINISHED; a worker is
// drained from its pool's page; the audit trail follows new events. A
// reader sees no button it may not use, and forms posted without the
// session's CSRF token, or from another site, change nothing.
func TestWebUIInABrowser(t *testing.T) {
	chromiumPath(t)
	srv := startServer(t, func(c *serverConfig) {
		c.publicWorkers, c.dataDir, c.path = 1, t.TempDir(), os.Getenv("PATH")
	})
	admin := srv.as(srv.adminToken(t))
	admin.createStack(t, &gantryv1.CreateStackRequest{Name: "web", RepositoryUrl: demoRepo(t), ManagedState: true,
		Description: "the browser test's stack", Hooks: &gantryv1.Hooks{BeforePlan: []string{uiHook}}})
	if _, err := admin.stacks.SetStackEnv(testCtx(t), connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "web", Key: "TF_VAR_password", Value: "hunter2-never-shown", Secret: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.stacks.SetStackEnv(testCtx(t), connect.NewRequest(&gantryv1.SetStackEnvRequest{Stack: "web", Key: "TF_VAR_greeting", Value: "hello from the UI"})); err != nil {
		t.Fatal(err)
	}

	// gantry dev's line carries the one-time link; it works once.
	line := srv.line("ui")
	link := strings.TrimSuffix(line[strings.LastIndex(line, " ")+1:], ")")
	if !strings.HasPrefix(link, srv.url+"/dev-sign-in?token=") {
		t.Fatalf("ui line %q has no sign-in link", line)
	}
	b := newBrowser(t, srv.url)
	b.do("follow the dev sign-in link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("table")))
	if got := b.text(".who strong"); got != "admin" {
		t.Fatalf("signed in as %q, want admin", got)
	}
	if res := httpGet(t, link, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("second use of the dev link: %d, want 403", res.StatusCode)
	}
	b.screenshot("stacks")

	// Trigger a tracked run from the stack's page and watch its log arrive.
	b.open("/stacks/web")
	if txt := b.text("#env-h + .scroll"); strings.Contains(txt, "hunter2") || !strings.Contains(txt, "(secret)") || !strings.Contains(txt, "hello from the UI") {
		t.Fatalf("environment table:\n%s", txt)
	}
	b.click("#trigger-run")
	b.do("wait for the run's page", chromedp.WaitVisible(chromedp.CSS("#logs")))
	// A marker that a reload would lose: the lines must arrive in this page.
	get(b, "mark the page", chromedp.Evaluate[bool](`window.gantryMarker = "same page"; true`))
	b.until(runEndTimeout, "the green tick to arrive live",
		`!!document.querySelector('#logs .ansi-fg-green') && document.querySelector('#logs').innerText.includes('tick 3 in green') && window.gantryMarker === "same page"`)
	state := get(b, "read the state", chromedp.Evaluate[string](`document.getElementById('run-state').textContent`))
	if state != "PLANNING" && state != "INITIALIZING" && state != "PREPARING" && state != "READY" && state != "QUEUED" {
		t.Fatalf("the lines arrived while the run was %s, want a state before UNCONFIRMED", state)
	}
	b.until(runEndTimeout, "the plan to wait for a confirmation", `!!document.getElementById('confirm-run') && document.getElementById('run-state').textContent === 'UNCONFIRMED'`)
	if sum := b.text("#plan-summary"); sum != "2 to add, 0 to change, 0 to destroy" {
		t.Fatalf("plan summary %q", sum)
	}
	b.screenshot("run-unconfirmed")
	b.click("#confirm-run")
	// The live page shows FINISHED from the stream, then reloads: wait for
	// the reloaded page (its log no longer live) before reading it.
	b.until(runEndTimeout, "the run to finish", `document.getElementById('run-state') && document.getElementById('run-state').textContent === 'FINISHED' && !document.getElementById('confirm-run') && document.getElementById('logs') && !document.getElementById('logs').dataset.liveLogs`)
	if logs := b.text("#logs"); !strings.Contains(logs, "Apply complete!") {
		t.Fatalf("the finished run's log lacks the apply:\n%s", logs)
	}
	b.screenshot("run-finished")
	b.do("narrow screen", chromedp.EmulateViewport(390, 844))
	b.screenshot("run-narrow")
	b.do("wide screen", chromedp.EmulateViewport(1280, 800))

	// A second run (a destroy: it has changes to plan) waits for a
	// confirmation, for the reader's checks.
	res, err := admin.runs.TriggerRun(testCtx(t), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "web", Destroy: true}))
	if err != nil {
		t.Fatal(err)
	}
	second := res.Msg.GetRun().GetId()
	admin.waitRunState(t, second, gantryv1.RunState_RUN_STATE_UNCONFIRMED)
	b.open("/stacks/web")
	if n := b.text("#state-h + .scroll caption"); !strings.Contains(n, "1 in all") {
		t.Fatalf("state versions caption %q", n)
	}
	b.screenshot("stack")

	// Drain the public pool's worker.
	b.open("/pools/wp_public")
	b.click(`#workers form[action$="/drain"] button`)
	b.do("wait for the notice", chromedp.WaitVisible(chromedp.CSS(".notice")))
	b.until(e2eTimeout, "the worker to be DRAINED", `document.querySelector('#workers .state').textContent === 'DRAINED' && !!document.querySelector('#workers form[action$="/undrain"]')`)
	b.screenshot("pool")

	// The audit trail follows new events.
	b.open("/events")
	b.until(e2eTimeout, "the live stream to start", `document.getElementById('live-status').textContent.includes('live')`)
	if _, err := admin.stacks.LockStack(testCtx(t), connect.NewRequest(&gantryv1.LockStackRequest{Stack: "web", Note: "watching the UI"})); err != nil {
		t.Fatal(err)
	}
	b.until(e2eTimeout, "the lock's event to appear live", `[...document.querySelectorAll('#events tr.new')].some(r => r.innerText.includes('user:admin'))`)
	b.screenshot("events")

	// Sign out, and in again as a reader with the form.
	readerKey := srv.apiKey(t, "viewer", apikey.RoleReader)
	b.click(".who button")
	b.do("wait for the sign-in form", chromedp.WaitVisible(chromedp.CSS("#api_key")))
	b.screenshot("sign-in")
	b.do("sign in as a reader", chromedp.SendKeys(chromedp.CSS("#api_key"), readerKey), chromedp.Submit(chromedp.CSS("#api_key")),
		chromedp.WaitVisible(chromedp.CSS(".who strong")))
	if got := b.text(".who strong"); got != "viewer" {
		t.Fatalf("signed in as %q, want viewer", got)
	}
	b.open("/runs/" + second)
	if buttons := b.count(".run-actions button"); buttons != 0 || !strings.Contains(b.text(".run-actions"), "Your role may not act on this run") {
		t.Fatalf("a reader sees %d run buttons", buttons)
	}
	b.open("/pools/wp_public")
	if buttons := b.count("#workers form, #cycle-pool"); buttons != 0 {
		t.Fatalf("a reader sees %d pool buttons", buttons)
	}
	b.open("/stacks/web")
	if buttons := b.count(`#trigger-run, #lock-stack, #unlock-stack, a[download], form[action*="/rollback"]`); buttons != 0 {
		t.Fatalf("a reader sees %d stack buttons", buttons)
	}

	// Forms without the session's CSRF token, or from another site, are
	// refused and change nothing; with it, a reader is refused by the API.
	writer := srv.token(t, "operator", apikey.RoleWriter)
	reader := srv.session(t, readerKey)
	confirm := srv.url + "/runs/" + second + "/confirm"
	if res := httpPost(t, confirm, writer, url.Values{}, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("confirm without a CSRF token: %d, want 403", res.StatusCode)
	}
	if res := httpPost(t, confirm, writer, url.Values{"csrf": {"forged"}}, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("confirm with a forged CSRF token: %d, want 403", res.StatusCode)
	}
	writerCSRF := csrfOf(t, srv.url+"/runs/"+second, writer)
	if res := httpPost(t, confirm, writer, url.Values{"csrf": {writerCSRF}}, "https://evil.example"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("confirm from another origin: %d, want 403", res.StatusCode)
	}
	if res := httpPost(t, confirm, reader, url.Values{"csrf": {csrfOf(t, srv.url+"/runs/"+second, reader)}}, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a reader's confirm: %d, want 403", res.StatusCode)
	}
	if s := admin.getRun(t, second).GetState(); s != gantryv1.RunState_RUN_STATE_UNCONFIRMED {
		t.Fatalf("after refused forms the run is %s, want UNCONFIRMED", s)
	}
	res2 := httpPost(t, srv.url+"/runs/"+second+"/discard", writer, url.Values{"csrf": {writerCSRF}, "note": {"from the test"}}, srv.url)
	if res2.StatusCode != http.StatusSeeOther {
		t.Fatalf("discard with the CSRF token: %d, want 303", res2.StatusCode)
	}
	admin.waitRunState(t, second, gantryv1.RunState_RUN_STATE_DISCARDED)

	// Every page carries the security headers; the cookie is HttpOnly and
	// SameSite=Strict.
	page := httpGet(t, srv.url+"/stacks", writer)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		page.Header.Get("X-Content-Type-Options") != "nosniff" || page.Header.Get("Referrer-Policy") == "" {
		t.Fatalf("security headers: %v", page.Header)
	}
	cookie := get(b, "read the cookies", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(cookie, "gantry_session") {
		t.Fatalf("the session cookie is readable by scripts: %q", cookie)
	}
	if body, _ := io.ReadAll(httpGet(t, srv.url+"/stacks/web", writer).Body); strings.Contains(string(body), "hunter2") || !strings.Contains(string(body), "(secret)") {
		t.Fatalf("the stack's page shows the secret, or no masked secret:\n%s", body)
	}
	if body, _ := io.ReadAll(httpGet(t, srv.url+"/events?stream_type=stack&from=0", writer).Body); strings.Contains(string(body), "hunter2") || !strings.Contains(string(body), "StackEnvSet") {
		t.Fatalf("the audit trail shows the secret, or not the variable's event:\n%s", body)
	}
}

// httpGet gets url with the session cookie token ("" for none), without
// following redirects.
func httpGet(t *testing.T, u, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return doNoRedirect(t, req, token)
}

// httpPost posts form to url with the session cookie token and Origin
// origin ("" for none).
func httpPost(t *testing.T, u, token string, form url.Values, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return doNoRedirect(t, req, token)
}

func doNoRedirect(t *testing.T, req *http.Request, token string) *http.Response {
	t.Helper()
	if token != "" {
		req.AddCookie(&http.Cookie{Name: "gantry_session", Value: token})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	res.Body = io.NopCloser(strings.NewReader(string(body)))
	return res
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf reads the CSRF token of a page's forms.
func csrfOf(t *testing.T, u, token string) string {
	t.Helper()
	res := httpGet(t, u, token)
	body, _ := io.ReadAll(res.Body)
	m := csrfInput.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, no CSRF token in\n%s", u, res.StatusCode, body)
	}
	return string(m[1])
}
