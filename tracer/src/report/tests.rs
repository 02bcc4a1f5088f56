//! Tests of the page: self-contained, a lane per stop, every diagnosis in the legend.
use super::*;
use crate::input::tests::{read_text, s1_line};
use crate::input::Inputs;

#[test]
fn the_page_is_self_contained_and_has_a_lane_per_stop() {
    let text = format!("{}\n{}\n", s1_line("node-a"), s1_line("node-b"));
    let (c, _) = read_text(&text, &Inputs::default());
    let notes = vec!["a note <with> markup".to_string()];
    let html = html::Page {
        title: "t & t",
        stops: &c.stops,
        notes: &notes,
    }
    .render();
    assert_eq!(html.matches("<g class=\"lane\"").count(), 2);
    assert!(html.contains("<title>t &amp; t</title>"));
    assert!(html.contains("a note &lt;with&gt; markup"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    for d in crate::engine::Diagnosis::ALL {
        assert!(html.contains(&format!("data-diagnosis=\"{}\"", d.as_str())));
    }
    // Both bars: 1.2 s each, same width.
    let widths: Vec<&str> = html
        .match_indices("class=\"bar t\"")
        .map(|(i, _)| {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            tag.split(" width=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(widths.len(), 2);
    assert_eq!(widths[0], widths[1]);
}

#[test]
fn an_empty_selection_still_renders() {
    let html = html::Page {
        title: "empty",
        stops: &[],
        notes: &[],
    }
    .render();
    assert!(html.contains("<b data-stops=\"0\">0</b> stops"));
    assert!(html.contains("Nothing: every stop was graceful"));
}
