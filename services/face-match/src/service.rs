//! The face-match domain service: fetch both artifacts, analyse them on an inference worker, decide, and issue
//! the verdict only once its ledger entry is durable.

use std::{sync::Arc, time::Instant};

use idv_shared::{
    auth::Caller,
    imaging::DecodeLimits,
    kernel::ServicePorts,
    metrics::record_stage,
    store::{ArtifactId, ArtifactKind},
    verdict::{Verdict, VerdictDraft},
};

use crate::{
    SERVICE,
    engine::Engine,
    error::{FaceMatchError, Role},
    matching::{self, ImageReport, MatchResult, Side},
    pipeline::{self, Analysis, FaceBox, PipelineError},
};

/// What a caller asks.
#[derive(Debug, Clone)]
pub struct MatchQuery {
    /// The document photo.
    pub reference: ArtifactId,
    /// The selfie.
    pub probe: ArtifactId,
    /// Threshold profile; the configured default when absent.
    pub profile: Option<String>,
}

/// The service.
#[derive(Debug)]
pub struct FaceMatcher {
    ports: ServicePorts,
    engine: Arc<Engine>,
    decode: DecodeLimits,
    default_profile: String,
}

fn tag(role: Role) -> impl Fn(PipelineError) -> FaceMatchError {
    move |e| match e {
        PipelineError::Decode(source) => FaceMatchError::Image { role, source },
        PipelineError::Inference(cause) => FaceMatchError::Inference(cause),
    }
}

impl FaceMatcher {
    /// A matcher over the kernel's ports and an inference engine.
    pub fn new(
        ports: ServicePorts,
        engine: Arc<Engine>,
        decode: DecodeLimits,
        default_profile: String,
    ) -> Self {
        Self {
            ports,
            engine,
            decode,
            default_profile,
        }
    }

    /// The engine (for `/v1/models` and reloads).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The profile used when a request names none.
    pub fn default_profile(&self) -> &str {
        &self.default_profile
    }

    /// Compares the faces of two artifacts and returns the recorded verdict.
    pub async fn verify(
        &self,
        caller: &Caller,
        query: MatchQuery,
    ) -> Result<Verdict<MatchResult>, FaceMatchError> {
        let profile = query
            .profile
            .unwrap_or_else(|| self.default_profile.clone());
        if !self
            .engine
            .current()
            .manifest
            .embedder
            .profiles
            .contains_key(&profile)
        {
            return Err(FaceMatchError::UnknownProfile(profile));
        }
        let started = Instant::now();
        let stores = &self.ports.artifacts;
        let (reference, probe) = tokio::join!(
            stores.fetch(&query.reference, &caller.regions, ArtifactKind::Image),
            stores.fetch(&query.probe, &caller.regions, ArtifactKind::Image),
        );
        let reference = reference.map_err(|source| FaceMatchError::Artifact {
            role: Role::Reference,
            source,
        })?;
        let probe = probe.map_err(|source| FaceMatchError::Artifact {
            role: Role::Probe,
            source,
        })?;
        record_stage(SERVICE.as_str(), "fetch", started.elapsed());

        // Both images on the same model generation, each on its own worker, so a pair takes about one image's
        // time when workers are free.
        let set = self.engine.current();
        let thresholds = *set
            .manifest
            .embedder
            .profiles
            .get(&profile)
            .ok_or_else(|| FaceMatchError::UnknownProfile(profile.clone()))?;
        let limits = self.decode;
        let (rb, pb) = (reference.bytes.clone(), probe.bytes.clone());
        let (r, p) = self
            .engine
            .run_pair_on(
                set.clone(),
                move |set, sessions| {
                    tracing::debug_span!("analyse", role = "reference")
                        .in_scope(|| pipeline::analyse(&rb, limits, &set.manifest, sessions))
                        .map_err(tag(Role::Reference))
                },
                move |set, sessions| {
                    tracing::debug_span!("analyse", role = "probe")
                        .in_scope(|| pipeline::analyse(&pb, limits, &set.manifest, sessions))
                        .map_err(tag(Role::Probe))
                },
            )
            .await?;
        let (r, p) = (r?, p?);
        let (calibration, quality, embedder, detector) = (
            set.manifest.embedder.calibration,
            set.manifest.quality,
            set.embedder_ref(),
            set.detector_ref(),
        );
        for a in [&r, &p] {
            record_times(a);
        }
        let similarity = match (&r.chosen, &p.chosen) {
            (Some((_, a)), Some((_, b))) => Some(pipeline::cosine(a, b)),
            _ => None,
        };
        let decision = matching::decide(
            side(&r),
            side(&p),
            similarity,
            thresholds,
            calibration,
            quality,
        );
        let result = MatchResult {
            similarity: decision.similarity.map(|(s, _)| s),
            match_probability: decision.similarity.map(|(_, p)| p),
            profile,
            thresholds,
            reference: report(&r),
            probe: report(&p),
            detector,
        };
        let draft = VerdictDraft {
            service: SERVICE,
            verdict: decision.verdict,
            confidence: decision.confidence,
            reasons: decision.reasons,
            result,
            artifacts: vec![reference.custody(), probe.custody()],
            model: Some(embedder),
            format: None,
        };
        self.ports
            .verdicts
            .issue(&caller.tenant, draft)
            .await
            .map_err(|e| FaceMatchError::Inference(e.detail))
    }
}

fn side(a: &Analysis) -> Side<'_> {
    Side {
        face: a.chosen.as_ref().map(|(f, _)| f),
        faces: &a.faces,
        best_score: a.best_score,
    }
}

fn report(a: &Analysis) -> ImageReport {
    ImageReport {
        face: a.chosen.as_ref().map(|(f, _)| f.clone()),
        faces_detected: a.faces.len(),
        other_faces: a
            .faces
            .iter()
            .skip(1)
            .take(10)
            .map(|f| FaceBox {
                x: f.bbox[0],
                y: f.bbox[1],
                width: f.bbox[2] - f.bbox[0],
                height: f.bbox[3] - f.bbox[1],
            })
            .collect(),
        exif_orientation: a.exif_orientation,
        dimensions: [a.dimensions.0, a.dimensions.1],
    }
}

fn record_times(a: &Analysis) {
    let s = SERVICE.as_str();
    record_stage(s, "decode", a.times.decode);
    record_stage(s, "detect", a.times.detect);
    record_stage(s, "align", a.times.align);
    record_stage(s, "embed", a.times.embed);
    record_stage(s, "inference", a.times.inference);
}
