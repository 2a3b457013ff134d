//! Tesseract's hOCR output, read for what the reader needs: lines, their words' confidence, and for every
//! character its confidence and the alternatives the LSTM weighed (`lstm_choice_mode = 2`, `hocr_char_boxes =
//! 1`). The output is Tesseract's own, line-oriented XHTML, so a small scanner suffices; nothing else in it is
//! used.

pub use crate::mrz::Glyph;

/// One text line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// The characters read, words joined without spaces (MRZ lines hold none).
    pub text: String,
    /// Mean word confidence, 0–1.
    pub confidence: f64,
    /// Every character of `text`, in order.
    pub glyphs: Vec<Glyph>,
    /// Each glyph's box, `[x0, y0, x1, y1]` in the image's pixels.
    pub boxes: Vec<[u32; 4]>,
    /// The line's words as read (any script: the VIZ is read with the general model), each with Tesseract's
    /// confidence in it (0–1).
    pub words: Vec<(String, f32)>,
}

/// The value of `key` (e.g. `x_conf`) in a `title='…'` attribute.
fn title_number(tag: &str, key: &str) -> Option<f32> {
    let title = tag.split("title='").nth(1)?.split('\'').next()?;
    title
        .split(';')
        .map(str::trim)
        .find_map(|part| part.strip_prefix(key)?.trim().parse().ok())
}

/// The box of a character (`x_bboxes x0 y0 x1 y1`).
fn char_box(tag: &str) -> Option<[u32; 4]> {
    let title = tag.split("title='").nth(1)?.split('\'').next()?;
    let mut n = title
        .split(';')
        .find_map(|part| part.trim().strip_prefix("x_bboxes"))?
        .split_whitespace()
        .map(|v| v.parse::<u32>().ok());
    Some([n.next()??, n.next()??, n.next()??, n.next()??])
}

/// The text a span holds, XML entities decoded.
fn span_text(after_tag: &str) -> Option<String> {
    let text = after_tag.split("</span>").next()?;
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

/// The single ASCII character a span holds.
fn span_char(after_tag: &str) -> Option<u8> {
    let text = span_text(after_tag)?;
    (text.len() == 1).then(|| text.as_bytes()[0])
}

/// Lines of an hOCR page, top to bottom as Tesseract ordered them.
pub fn lines(hocr: &str) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    let mut words: Vec<f32> = Vec::new();
    let close = |out: &mut Vec<Line>, words: &mut Vec<f32>| {
        if let Some(line) = out.last_mut() {
            line.confidence = if words.is_empty() {
                0.0
            } else {
                f64::from(words.iter().sum::<f32>() / words.len() as f32 / 100.0).clamp(0.0, 1.0)
            };
        }
        words.clear();
    };
    for tag in hocr.split("<span ").skip(1) {
        let Some((head, rest)) = tag.split_once('>') else {
            continue;
        };
        // Tesseract 5 classes text lines by their role; all of them are lines here.
        let line_classes = ["ocr_line", "ocr_textfloat", "ocr_header", "ocr_caption"];
        if line_classes
            .iter()
            .any(|c| head.contains(&format!("class='{c}'")))
        {
            close(&mut out, &mut words);
            out.push(Line::default());
        } else if head.contains("class='ocrx_word'") {
            let conf = title_number(head, "x_wconf").unwrap_or(0.0).max(0.0);
            words.push(conf);
            if let Some(line) = out.last_mut() {
                line.words
                    .push((String::new(), (conf / 100.0).clamp(0.0, 1.0)));
            }
        } else if head.contains("id='choice_") {
            let (Some(ch), Some(line)) = (span_char(rest), out.last_mut()) else {
                continue;
            };
            let conf = title_number(head, "x_confs").unwrap_or(0.0) / 100.0;
            if let Some(g) = line.glyphs.last_mut()
                && ch != g.ch
                && conf > 0.0
            {
                g.alternatives.push((ch, conf.clamp(0.0, 1.0)));
            }
        } else if head.contains("x_bboxes") {
            let (Some(text), Some(line)) = (span_text(rest), out.last_mut()) else {
                continue;
            };
            if let Some((word, _)) = line.words.last_mut() {
                word.push_str(&text);
            }
            let Some(ch) = span_char(rest) else {
                continue;
            };
            let conf = title_number(head, "x_conf").unwrap_or(0.0) / 100.0;
            line.text.push(char::from(ch));
            line.boxes.push(char_box(head).unwrap_or_default());
            line.glyphs.push(Glyph {
                ch,
                conf: conf.clamp(0.0, 1.0),
                alternatives: Vec::new(),
            });
        }
    }
    close(&mut out, &mut words);
    out.retain(|l| !l.glyphs.is_empty());
    for line in &mut out {
        for g in &mut line.glyphs {
            g.alternatives.sort_by(|a, b| b.1.total_cmp(&a.1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<div class='ocr_page'>
     <span class='ocr_line' id='line_1_1' title=\"bbox 27 27 1600 67; baseline 0.001 -2\">
      <span class='ocrx_word' id='word_1_1' title='bbox 27 27 1600 67; x_wconf 92'>
       <span class='ocrx_cinfo' title='x_bboxes 27 28 52 65; x_conf 99.043228'>P</span>
        <span class='ocrx_cinfo' id='lstm_choices_1_1_1'>
         <span class='ocrx_cinfo' id='choice_1_1_1' title='x_confs 92.34903'>P</span>
         <span class='ocrx_cinfo' id='choice_1_1_2' title='x_confs 4.5'>F</span>
         <span class='ocrx_cinfo' id='choice_1_1_3' title='x_confs 0'>R</span>
        </span>
       <span class='ocrx_cinfo' title='x_bboxes 62 28 87 61; x_conf 61.5'>&lt;</span>
      </span>
     </span>
     <span class='ocr_line' id='line_1_2' title=\"bbox 26 100 1600 146\">
      <span class='ocrx_word' id='word_1_2' title='bbox 26 100 800 146; x_wconf 80'>
       <span class='ocrx_cinfo' title='x_bboxes 26 100 50 146; x_conf 80'>0</span>
      </span>
      <span class='ocrx_word' id='word_1_3' title='bbox 900 100 1600 146; x_wconf 60'>
       <span class='ocrx_cinfo' title='x_bboxes 900 100 950 146; x_conf 60'>1</span>
      </span>
     </span>";

    #[test]
    fn characters_confidences_and_alternatives_are_read() {
        let lines = lines(SAMPLE);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "P<");
        assert!((lines[0].confidence - 0.92).abs() < 1e-6);
        let p = &lines[0].glyphs[0];
        assert_eq!((p.ch, p.alternatives.len()), (b'P', 1));
        assert_eq!(p.alternatives[0].0, b'F');
        assert!((p.alternatives[0].1 - 0.045).abs() < 1e-6);
        assert!((lines[0].glyphs[1].conf - 0.615).abs() < 1e-6);
        assert_eq!(lines[0].boxes, [[27, 28, 52, 65], [62, 28, 87, 61]]);
        // Words of a line are joined; the line's confidence is their mean.
        assert_eq!(lines[1].text, "01");
        assert_eq!(
            lines[1].words,
            [("0".to_owned(), 0.8), ("1".to_owned(), 0.6)]
        );
        assert!((lines[1].confidence - 0.70).abs() < 1e-6);
    }

    #[test]
    fn no_text_is_no_lines() {
        assert!(lines("").is_empty());
        assert!(lines("<span class='ocr_line'></span>").is_empty());
    }
}
