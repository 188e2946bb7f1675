package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
)

// A body over a route's limit is refused 413 before the handler sees it,
// whether its length is announced or not.
func TestBodyLimit(t *testing.T) {
	reached := 0
	srv, _ := runServer(t, Route{Path: "/small/", MaxBodyBytes: 1024, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		if _, err := io.ReadAll(r.Body); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "cut off", http.StatusRequestEntityTooLarge)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})})
	client := http1Client(t)
	post := func(body io.Reader) (int, string) {
		t.Helper()
		res, err := client.Post("http://"+srv.Addr().String()+"/small/x", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := post(bytes.NewReader(make([]byte, 1024))); code != http.StatusNoContent {
		t.Errorf("a body at the limit: %d", code)
	}
	code, body := post(bytes.NewReader(make([]byte, 1025)))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"code":"resource_exhausted"`) || !strings.Contains(body, "1024 bytes") {
		t.Errorf("an announced body over the limit: %d %s", code, body)
	}
	if reached != 1 {
		t.Errorf("the handler ran %d times, want once", reached)
	}
	// Without a length (chunked), the body is cut off at the limit.
	if code, _ := post(io.MultiReader(strings.NewReader(strings.Repeat("x", 2048)))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked body over the limit: %d", code)
	}
}

// JSON requests may name only what the API defines: an unknown enum name
// is refused like an unknown number would be, naming the field.
func TestStrictJSONRefusesUnknownEnumNames(t *testing.T) {
	path, h := gantryv1connect.NewRunServiceHandler(unimplementedRuns{}, StrictJSON()...)
	srv, _ := runServer(t, Route{Path: path, Handler: h})
	client := gantryv1connect.NewRunServiceClient(http1Client(t), "http://"+srv.Addr().String(), connect.WithProtoJSON())
	for body, names := range map[string]string{`{"stack":"x","type":"RUN_TYPE_BOGUS"}`: "enum field type", `{"stack":"x","typo":1}`: `unknown field \"typo\"`} {
		req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr().String()+path+"TriggerRun", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http1Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "invalid_argument") || !strings.Contains(string(answer), names) {
			t.Errorf("%s: %d %s, want invalid_argument", body, res.StatusCode, answer)
		}
	}
	if !strings.Contains(func() string {
		_, err := client.TriggerRun(context.Background(), connect.NewRequest(&gantryv1.TriggerRunRequest{Stack: "x"}))
		return err.Error()
	}(), "unimplemented") {
		t.Error("a well-formed JSON request did not reach the handler")
	}
}

type unimplementedRuns struct {
	gantryv1connect.UnimplementedRunServiceHandler
}
