#!/usr/bin/env python3
"""An independent Python implementation of face-match's pipeline (onnxruntime + OpenCV + NumPy), following
InsightFace's reference code: SCRFD letterbox/anchor decoding/NMS, Umeyama similarity alignment with
cv2.warpAffine, ArcFace embedding.

It serves two purposes:
  embed-crops   embeds aligned 112×112 crops written by the Rust pipeline (the agreement test compares the
                embeddings: same crops, independent preprocessing and runtime binding);
  pipeline      runs the whole pipeline over labelled pairs and times it (the benchmark's Python baseline).

Runs in the test-tools venv (.cache/venv), which scripts/lib.sh installs from hash-pinned wheels.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time
import tomllib

import cv2
import numpy as np
import onnxruntime as ort


def load_manifest(path):
    m = tomllib.loads(pathlib.Path(path).read_text())
    base = pathlib.Path(path).parent
    return m, base


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class Pipeline:
    def __init__(self, manifest_path, threads=1):
        m, base = load_manifest(manifest_path)
        self.det_spec, self.emb_spec = m["detector"], m["embedder"]
        self.det = session(base / self.det_spec["file"], threads)
        self.emb = session(base / self.emb_spec["file"], threads)
        self.template = np.array(self.emb_spec["alignment"]["template"], dtype=np.float32)
        self.infer_s = 0.0

    def detect(self, img_bgr):
        spec = self.det_spec
        side = spec["input"]["size"]
        h, w = img_bgr.shape[:2]
        if h / w > 1:
            nh, nw = side, int(side / (h / w))
        else:
            nw, nh = side, int(side * (h / w))
        scale = nh / h
        canvas = np.zeros((side, side, 3), dtype=np.uint8)
        canvas[:nh, :nw] = cv2.resize(img_bgr, (nw, nh))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / spec["input"]["std"], (side, side),
                                     (spec["input"]["mean"],) * 3, swapRB=spec["input"]["colour"] == "RGB")
        t = time.perf_counter()
        outs = self.det.run(None, {spec["input"]["name"]: blob})
        self.infer_s += time.perf_counter() - t
        names = [o.name for o in self.det.get_outputs()]
        by_name = dict(zip(names, outs))
        outs = [by_name[o["name"]] for o in spec["outputs"]]
        p = spec["params"]
        n = len(p["strides"])
        boxes, scores, kpss = [], [], []
        for i, stride in enumerate(p["strides"]):
            sc = outs[i].reshape(-1)
            bb = outs[i + n].reshape(-1, 4) * stride
            kp = outs[i + 2 * n].reshape(-1, 10) * stride
            fh = fw = side // stride
            centers = np.stack(np.mgrid[:fh, :fw][::-1], axis=-1).astype(np.float32)
            centers = (centers * stride).reshape(-1, 2)
            centers = np.stack([centers] * p["anchors_per_location"], axis=1).reshape(-1, 2)
            keep = np.where(sc >= p["score_threshold"])[0]
            c = centers[keep]
            b = np.stack([c[:, 0] - bb[keep, 0], c[:, 1] - bb[keep, 1], c[:, 0] + bb[keep, 2], c[:, 1] + bb[keep, 3]], -1)
            k = np.stack([c[:, j % 2] + kp[keep, j] for j in range(10)], -1).reshape(-1, 5, 2)
            boxes.append(b / scale)
            scores.append(sc[keep])
            kpss.append(k / scale)
        boxes, scores, kpss = np.vstack(boxes), np.hstack(scores), np.vstack(kpss)
        order = scores.argsort()[::-1]
        keep = []
        while order.size:
            i = order[0]
            keep.append(i)
            xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
            yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
            xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
            yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
            inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
            area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
            iou = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter)
            order = order[1:][iou <= p["nms_iou"]]
        return boxes[keep], scores[keep], kpss[keep]

    def align(self, img_bgr, landmarks):
        src, dst = landmarks.astype(np.float64), self.template.astype(np.float64)
        ms, md = src.mean(0), dst.mean(0)
        s, d = src - ms, dst - md
        var = (s ** 2).sum()
        a = (s * d).sum() / var
        b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
        M = np.array([[a, -b, md[0] - (a * ms[0] - b * ms[1])], [b, a, md[1] - (b * ms[0] + a * ms[1])]])
        side = self.emb_spec["input"]["size"]
        return cv2.warpAffine(img_bgr, M, (side, side), borderValue=0.0)

    def embed_bgr(self, crop_bgr):
        spec = self.emb_spec["input"]
        blob = cv2.dnn.blobFromImage(crop_bgr, 1.0 / spec["std"], (spec["size"], spec["size"]),
                                     (spec["mean"],) * 3, swapRB=spec["colour"] == "RGB")
        t = time.perf_counter()
        out = self.emb.run(None, {spec["name"]: blob})[0].reshape(-1)
        self.infer_s += time.perf_counter() - t
        return out / np.linalg.norm(out)

    def analyse(self, data):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            return None
        boxes, scores, kpss = self.detect(img)
        if len(boxes) == 0:
            return None
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        i = int(areas.argmax())
        return self.embed_bgr(self.align(img, kpss[i]))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default="models/manifest.toml")
    ap.add_argument("--threads", type=int, default=1)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed-crops")
    e.add_argument("crops", nargs="+")
    p = sub.add_parser("pipeline")
    p.add_argument("--pairs", required=True)
    p.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    pipe = Pipeline(args.manifest, args.threads)
    if args.cmd == "embed-crops":
        out = [pipe.embed_bgr(cv2.imread(c, cv2.IMREAD_COLOR)).tolist() for c in args.crops]
        json.dump(out, sys.stdout)
        return
    base = pathlib.Path(args.pairs).parent
    pairs = []
    for line in pathlib.Path(args.pairs).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        a, b, label = [c.strip() for c in line.split(",")]
        if label in ("label", "same_person"):
            continue
        pairs.append((base / a, base / b, label in ("same", "genuine", "1", "true")))
    data = {p: p.read_bytes() for pair in pairs for p in pair[:2]}
    lat, infer, results = [], [], []
    for rep in range(args.repeat + 1):
        for a, b, same in pairs:
            pipe.infer_s = 0.0
            t = time.perf_counter()
            ea, eb = pipe.analyse(data[a]), pipe.analyse(data[b])
            dt = time.perf_counter() - t
            if rep == 0:  # warm-up round, also the scores
                sim = None if ea is None or eb is None else float(np.dot(ea, eb))
                results.append({"a": a.name, "b": b.name, "same": same, "similarity": sim})
                continue
            lat.append(dt * 1e3)
            infer.append(pipe.infer_s * 1e3)
    summary = {"pairs": len(pairs), "runs": len(lat), "results": results}
    if lat:
        summary["latency_ms"] = {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                                 "mean": statistics.mean(lat)}
        summary["inference_ms"] = {"p50": pct(infer, 50), "mean": statistics.mean(infer)}
    json.dump(summary, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
