// Command trainer is Champion's example training and evaluation program for the real test node. It
// follows the Job contract of docs/DESIGN (the variables the operator injects) and reports ONE JSON object
// of numeric metrics in its termination message ($TERMINATION_LOG, default /dev/termination-log), which
// Kubernetes copies into the Pod's status.
//
// Training (no CANDIDATE_MODEL_URI): needs CHAMPION_RUN_ID, DATASET_URI, MODEL_OUTPUT_URI; reads
// CHAMPION_TRIAL, CHAMPION_PARAMS (a JSON object; learning_rate and max_depth shape the result),
// DATASET_VERSION. Reports {"val_f1","val_loss","trial","train_seconds"}: val_f1 is a smooth function of
// the parameters (best near learning_rate 0.01, max_depth 6) plus a small offset fixed by the dataset
// version and trial, so a search over parameters has a real optimum and reruns are reproducible.
//
// Evaluation (CANDIDATE_MODEL_URI set): needs CHAMPION_MODEL_URI too, and DATASET_URI. Reports
// {"f1","false_positive_rate","champion_f1","champion_false_positive_rate"}: the same held-out score for
// the candidate and the champion, each a fixed function of its model URI and the dataset version.
//
// Knobs: TRAIN_SECONDS (pretend to work this long, default 0), FAIL_WITH (write this message to the
// termination log and exit 1: a failing trial).
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log"
	"math"
	"os"
	"strconv"
	"time"
)

func must(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail(fmt.Sprintf("%s is not set (the Job contract requires it)", name))
	}
	return v
}

// fail reports msg as the termination message and exits 1.
func fail(msg string) {
	log.Print(msg)
	_ = os.WriteFile(terminationLog(), []byte(msg), 0o644)
	os.Exit(1)
}

func terminationLog() string {
	if p := os.Getenv("TERMINATION_LOG"); p != "" {
		return p
	}
	return "/dev/termination-log"
}

// unit is a reproducible number in [0, 1) derived from the given strings.
func unit(parts ...string) float64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

func number(params map[string]any, key string, def float64) float64 {
	switch v := params[key].(type) {
	case float64:
		return v
	case string:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func round(x float64) float64 { return math.Round(x*1e6) / 1e6 }

func main() {
	log.SetFlags(0)
	log.SetPrefix("trainer: ")
	start := time.Now()
	if msg := os.Getenv("FAIL_WITH"); msg != "" {
		fail(msg)
	}
	runID := must("CHAMPION_RUN_ID")
	dataset := must("DATASET_URI")
	version := os.Getenv("DATASET_VERSION")
	if s := os.Getenv("TRAIN_SECONDS"); s != "" {
		d, err := strconv.ParseFloat(s, 64)
		if err != nil || d < 0 {
			fail(fmt.Sprintf("TRAIN_SECONDS=%q: want a non-negative number", s))
		}
		time.Sleep(time.Duration(d * float64(time.Second)))
	}

	var metrics map[string]float64
	if candidate := os.Getenv("CANDIDATE_MODEL_URI"); candidate != "" {
		champion := must("CHAMPION_MODEL_URI")
		score := func(uri string) (f1, fpr float64) {
			return 0.85 + 0.1*unit(uri, dataset, version, "f1"), 0.01 + 0.04*unit(uri, dataset, version, "fpr")
		}
		f1, fpr := score(candidate)
		cf1, cfpr := score(champion)
		metrics = map[string]float64{
			"f1": round(f1), "false_positive_rate": round(fpr),
			"champion_f1": round(cf1), "champion_false_positive_rate": round(cfpr),
		}
		log.Printf("run %s: evaluated %s against %s on %s@%s", runID, candidate, champion, dataset, version)
	} else {
		output := must("MODEL_OUTPUT_URI")
		trial := os.Getenv("CHAMPION_TRIAL")
		params := map[string]any{}
		if p := os.Getenv("CHAMPION_PARAMS"); p != "" {
			if err := json.Unmarshal([]byte(p), &params); err != nil {
				fail(fmt.Sprintf("CHAMPION_PARAMS is not a JSON object: %v", err))
			}
		}
		lr := number(params, "learning_rate", 0.01)
		if lr <= 0 {
			fail(fmt.Sprintf("learning_rate %g: must be positive", lr))
		}
		depth := number(params, "max_depth", 6)
		f1 := 0.93 - 0.02*math.Pow(math.Log10(lr)+2, 2) - 0.005*math.Abs(depth-6) - 0.01*unit(version, trial)
		f1 = math.Max(0, f1)
		n, _ := strconv.Atoi(trial)
		metrics = map[string]float64{
			"val_f1": round(f1), "val_loss": round(1 - f1), "trial": float64(n),
			"train_seconds": round(time.Since(start).Seconds()),
		}
		log.Printf("run %s trial %s: trained on %s@%s with %v, model written to %s", runID, trial, dataset, version,
			params, output)
	}
	out, err := json.Marshal(metrics)
	if err != nil {
		fail(err.Error())
	}
	if err := os.WriteFile(terminationLog(), out, 0o644); err != nil {
		log.Fatalf("cannot write %s: %v", terminationLog(), err)
	}
	fmt.Println(string(out))
}
