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
    // The lanes are the script's, from the embedded data: one per stop.
    let json = html
        .split("<script type=\"application/json\" id=\"stops-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the page's data");
    let data: serde_json::Value = serde_json::from_str(json).expect("JSON data");
    let lanes = data["lanes"].as_array().expect("lanes");
    assert_eq!(lanes.len(), 2);
    assert!(html.contains("<title>t &amp; t</title>"));
    assert!(html.contains("a note &lt;with&gt; markup"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    for d in crate::engine::Diagnosis::ALL {
        assert!(html.contains(&format!("data-diagnosis=\"{}\"", d.as_str())));
    }
    // Both bars: 1.2 s each, the same span (bar start, end: fields 7 and 8, in µs).
    let spans: Vec<i64> = lanes
        .iter()
        .map(|l| l[8].as_i64().unwrap() - l[7].as_i64().unwrap())
        .collect();
    assert_eq!(spans[0], spans[1]);
    assert!((1_199_999..=1_200_001).contains(&spans[0]), "{spans:?}");
    assert_eq!(lanes[0][6], 1200, "duration in ms");
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
