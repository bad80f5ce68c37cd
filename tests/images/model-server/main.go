// Command model-server is Champion's example model server for the real test node. It serves one model,
// named by the variables the operator injects (MODEL_NAME, MODEL_VERSION, MODEL_URI), on $PORT (8080):
//
//	POST|GET /predict  a JSON answer {"model","version","uri","pod","score","label"}; score is a fixed
//	                   function of the request body, so two variants that agree give the same label
//	GET /health        200 "ok" (503 with NEVER_READY=true)
//	GET /metrics       Prometheus text: http_requests_total{handler,method,code} and the histogram
//	                   http_request_duration_seconds{handler} of /predict requests (probes and scrapes are
//	                   not counted, so an error ratio over http_requests_total is the model API's own)
//
// Knobs, all read once at start:
//
//	ERROR_RATE  fraction of /predict requests answered 500, spread evenly: exactly
//	            floor(n*ERROR_RATE) of the first n requests fail (default 0)
//	LATENCY_MS  added to every /predict request (default 0)
//	DISAGREE    fraction of predictions whose label is flipped, spread the same way (default 0)
//	NEVER_READY "true": /health always answers 503 (a readiness probe that never passes)
//	EXIT_CODE   exit at once with this code after one line on stderr (a container that crashes)
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type config struct {
	name, version, uri, pod string
	errorRate, disagree      float64
	latency                  time.Duration
	neverReady               bool
}

type server struct {
	cfg config

	mu       sync.Mutex
	served   uint64            // /predict requests so far (decides which ones fail)
	answered uint64            // successful predictions so far (decides which ones disagree)
	requests map[string]uint64 // "method code" -> count
	bucketN  []uint64          // cumulative per bucket
	sum      float64
	count    uint64
}

func fraction(name string) float64 {
	v, err := strconv.ParseFloat(envOr(name, "0"), 64)
	if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
		log.Fatalf("%s=%q: want a number from 0 to 1", name, os.Getenv(name))
	}
	return v
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// nth reports whether the n-th event (0-based) is one of the evenly spread fraction f of all events.
func nth(n uint64, f float64) bool {
	return math.Floor(float64(n+1)*f) > math.Floor(float64(n)*f)
}

func (s *server) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s.cfg.latency > 0 {
		time.Sleep(s.cfg.latency)
	}
	s.mu.Lock()
	fail := nth(s.served, s.cfg.errorRate)
	s.served++
	flip := false
	if !fail {
		flip = nth(s.answered, s.cfg.disagree)
		s.answered++
	}
	s.mu.Unlock()

	code := http.StatusOK
	var answer map[string]any
	if fail {
		code = http.StatusInternalServerError
		answer = map[string]any{"error": "injected failure (ERROR_RATE)", "version": s.cfg.version, "pod": s.cfg.pod}
	} else {
		h := fnv.New64a()
		h.Write(body)
		score := float64(h.Sum64()%1000) / 1000
		label := score >= 0.5
		if flip {
			label = !label
		}
		answer = map[string]any{
			"model": s.cfg.name, "version": s.cfg.version, "uri": s.cfg.uri, "pod": s.cfg.pod,
			"score": score, "label": label,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(answer)
	s.observe(r.Method, code, time.Since(start).Seconds())
}

func (s *server) observe(method string, code int, seconds float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[fmt.Sprintf("%s %d", method, code)]++
	for i, b := range buckets {
		if seconds <= b {
			s.bucketN[i]++
		}
	}
	s.sum += seconds
	s.count++
}

func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.neverReady {
		http.Error(w, "not ready (NEVER_READY)", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (s *server) metrics(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP http_requests_total /predict requests by method and status code.\n")
	b.WriteString("# TYPE http_requests_total counter\n")
	keys := make([]string, 0, len(s.requests)+2)
	for k := range s.requests {
		keys = append(keys, k)
	}
	// Both codes exist from the start, so a rate over them is 0 rather than absent.
	for _, k := range []string{"POST 200", "POST 500"} {
		if _, ok := s.requests[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		method, code, _ := strings.Cut(k, " ")
		fmt.Fprintf(&b, "http_requests_total{handler=\"/predict\",method=%q,code=%q} %d\n", method, code, s.requests[k])
	}
	b.WriteString("# HELP http_request_duration_seconds Duration of /predict requests.\n")
	b.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for i, le := range buckets {
		fmt.Fprintf(&b, "http_request_duration_seconds_bucket{handler=\"/predict\",le=\"%g\"} %d\n", le, s.bucketN[i])
	}
	fmt.Fprintf(&b, "http_request_duration_seconds_bucket{handler=\"/predict\",le=\"+Inf\"} %d\n", s.count)
	fmt.Fprintf(&b, "http_request_duration_seconds_sum{handler=\"/predict\"} %g\n", s.sum)
	fmt.Fprintf(&b, "http_request_duration_seconds_count{handler=\"/predict\"} %d\n", s.count)
	b.WriteString("# HELP model_info The model this server serves.\n# TYPE model_info gauge\n")
	fmt.Fprintf(&b, "model_info{model_name=%q,model_version=%q} 1\n", s.cfg.name, s.cfg.version)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("model-server: ")
	if code := os.Getenv("EXIT_CODE"); code != "" {
		n, err := strconv.Atoi(code)
		if err != nil {
			log.Fatalf("EXIT_CODE=%q: want an integer", code)
		}
		log.Printf("exiting with code %d as EXIT_CODE asks", n)
		os.Exit(n)
	}
	latency, err := strconv.Atoi(envOr("LATENCY_MS", "0"))
	if err != nil || latency < 0 {
		log.Fatalf("LATENCY_MS=%q: want a non-negative integer", os.Getenv("LATENCY_MS"))
	}
	host, _ := os.Hostname()
	s := &server{
		cfg: config{
			name: os.Getenv("MODEL_NAME"), version: os.Getenv("MODEL_VERSION"), uri: os.Getenv("MODEL_URI"),
			pod: host, errorRate: fraction("ERROR_RATE"), disagree: fraction("DISAGREE"),
			latency: time.Duration(latency) * time.Millisecond, neverReady: os.Getenv("NEVER_READY") == "true",
		},
		requests: map[string]uint64{},
		bucketN:  make([]uint64, len(buckets)),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/predict", s.predict)
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc("/metrics", s.metrics)
	addr := ":" + envOr("PORT", "8080")
	log.Printf("serving model %q version %q (%s) on %s; ERROR_RATE=%g LATENCY_MS=%d DISAGREE=%g NEVER_READY=%t",
		s.cfg.name, s.cfg.version, s.cfg.uri, addr, s.cfg.errorRate, latency, s.cfg.disagree, s.cfg.neverReady)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
