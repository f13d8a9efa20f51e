//! The loss curve as a PNG (plotters, with DejaVu Sans compiled in so that no system font
//! is needed).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::checkpoint::Meta;

static FONT: Once = Once::new();

/// Draws training loss per step (light) and validation loss at each evaluation (bold) to
/// `path` (written through a temporary file and renamed).
pub fn loss_curve(path: &Path, meta: &Meta) -> Result<(), String> {
    FONT.call_once(|| {
        // Cannot fail for the bundled font; a failure would only drop the labels.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
    let tmp = path.with_extension("tmp.png");
    let err =
        |e: &dyn std::fmt::Display| format!("{}: cannot draw the loss curve ({e})", path.display());
    {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let last = meta.train.steps.max(1);
        let all = meta
            .train_loss
            .iter()
            .chain(&meta.val_loss)
            .map(|p| p.1)
            .filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo * 0.95, hi * 1.02)
        } else {
            (0.0, 1.0)
        };
        let title = format!(
            "{}: {} layers x {} wide, {} (val {})",
            "tinyshakespeare",
            meta.model.n_layer,
            meta.model.n_embd,
            meta.train.optimizer.name(),
            meta.val_loss
                .last()
                .map_or("-".into(), |v| format!("{:.4}", v.1))
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0u64..last, lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("cross-entropy (nats/char)")
            .draw()
            .map_err(|e| err(&e))?;
        let light = RGBColor(120, 160, 220);
        chart
            .draw_series(LineSeries::new(
                meta.train_loss.iter().copied().filter(|p| p.1.is_finite()),
                &light,
            ))
            .map_err(|e| err(&e))?
            .label("train (batch)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], light));
        chart
            .draw_series(LineSeries::new(
                meta.val_loss.iter().copied(),
                RED.stroke_width(3),
            ))
            .map_err(|e| err(&e))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(3)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}
