//! `[branding]`: the partner's logo, cover text and bar colours on the reports, and the
//! tenants that get the default theme instead.
//!
//! Every value is checked when the configuration is read: colours are `#rrggbb`, the cover
//! text is one paragraph of at most [`MAX_COVER_TEXT`] characters, and the logo must be a PNG
//! or JPEG file of at most [`MAX_LOGO_BYTES`] bytes and [`MAX_LOGO_PIXELS`] pixels a side (the
//! header is read before anything is decoded, so a decompression bomb is refused unread). The
//! logo is read again for every report (it may have changed), with the same bound: never more
//! than [`MAX_LOGO_BYTES`] bytes, never from what is not a regular file (`/dev/zero`, a FIFO).
//! The logo is scaled down to at most [`LOGO_MAX_W`] × [`LOGO_MAX_H`] pixels and its alpha
//! flattened onto white before it reaches the PDF, which keeps reports small.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use genpdf::style::Color;
use serde::{Deserialize, Deserializer};

/// Most characters of the cover text.
pub const MAX_COVER_TEXT: usize = 160;
/// Largest logo file accepted.
pub const MAX_LOGO_BYTES: u64 = 1 << 20;
/// Largest logo width or height accepted, in pixels.
pub const MAX_LOGO_PIXELS: u32 = 4096;
/// Width and height the logo is scaled down to (at most), in pixels.
pub const LOGO_MAX_W: u32 = 480;
/// See [`LOGO_MAX_W`].
pub const LOGO_MAX_H: u32 = 160;

/// A colour written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

impl Colour {
    /// The default bar colour: Ampel's slate.
    pub const DEFAULT: Colour = Colour(30, 41, 59);

    /// As genpdf wants it.
    pub fn color(self) -> Color {
        Color::Rgb(self.0, self.1, self.2)
    }

    /// Whether white text is easier to read on it than dark text (relative luminance).
    pub fn is_dark(self) -> bool {
        let l = 0.2126 * f64::from(self.0) + 0.7152 * f64::from(self.1) + 0.0722 * f64::from(self.2);
        l < 150.0
    }
}

impl std::str::FromStr for Colour {
    type Err = String;
    fn from_str(s: &str) -> Result<Colour, String> {
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| format!("{s:?} is not a colour; write it as \"#rrggbb\", e.g. \"#1e293b\""))?;
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
        Ok(Colour(byte(0), byte(2), byte(4)))
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The cover text: at most [`MAX_COVER_TEXT`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverText(pub String);

impl<'de> Deserialize<'de> for CoverText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let n = s.chars().count();
        if n > MAX_COVER_TEXT {
            return Err(serde::de::Error::custom(format!("the cover text has {n} characters; at most {MAX_COVER_TEXT} are allowed")));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(serde::de::Error::custom(format!("the cover text contains the control character {c:?}; write one paragraph")));
        }
        Ok(CoverText(s))
    }
}

/// `[branding]` in `collector.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BrandingConfig {
    /// Off: every report gets the default theme.
    pub use_branding: bool,
    /// PNG or JPEG logo on the cover's header bar.
    pub logo: Option<PathBuf>,
    /// A paragraph on the cover.
    pub cover_text: Option<CoverText>,
    /// Colour of the cover's header bar.
    pub header_color: Colour,
    /// Colour of the footer bar on every page.
    pub footer_color: Colour,
    /// Tenants that get the default theme even with branding on.
    pub exclude_tenants: Vec<ampel_protocol::TenantId>,
}

impl Default for BrandingConfig {
    fn default() -> BrandingConfig {
        BrandingConfig {
            use_branding: false,
            logo: None,
            cover_text: None,
            header_color: Colour::DEFAULT,
            footer_color: Colour::DEFAULT,
            exclude_tenants: Vec::new(),
        }
    }
}

impl BrandingConfig {
    /// Resolves a relative logo path against the configuration's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.logo.as_mut()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }

    /// Checks what the parser could not: that the logo file is there and usable.
    pub fn validate(&self) -> Result<(), LogoError> {
        match &self.logo {
            Some(path) if self.use_branding => load_logo(path).map(drop),
            _ => Ok(()),
        }
    }

    /// The theme of `tenant`'s report; if the logo cannot be read any more (the file changed
    /// since the configuration was checked), the theme without it and why. A report is never
    /// held back for its logo.
    pub fn theme_or_without_logo(&self, tenant: &str) -> (Theme, Option<LogoError>) {
        match self.theme_for(tenant) {
            Ok(t) => (t, None),
            Err(e) => {
                let without = BrandingConfig { logo: None, ..self.clone() };
                (without.theme_for(tenant).unwrap_or_default(), Some(e))
            }
        }
    }

    /// The theme of `tenant`'s report.
    pub fn theme_for(&self, tenant: &str) -> Result<Theme, LogoError> {
        if !self.use_branding || self.exclude_tenants.iter().any(|t| t.as_str() == tenant) {
            return Ok(Theme::default());
        }
        let logo = match &self.logo {
            Some(path) => Some(load_logo(path)?),
            None => None,
        };
        Ok(Theme { header: self.header_color, footer: self.footer_color, logo, cover_text: self.cover_text.as_ref().map(|c| c.0.clone()) })
    }
}

/// How one report looks: bar colours, logo and cover text.
#[derive(Debug, Clone)]
pub struct Theme {
    /// Cover header bar.
    pub header: Colour,
    /// Footer bar on every page.
    pub footer: Colour,
    /// The logo, RGB, already scaled down.
    pub logo: Option<image::DynamicImage>,
    /// Cover text.
    pub cover_text: Option<String>,
}

impl Default for Theme {
    /// The default theme: Ampel's colours, no logo, no cover text.
    fn default() -> Theme {
        Theme { header: Colour::DEFAULT, footer: Colour::DEFAULT, logo: None, cover_text: None }
    }
}

/// Why the configured logo cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogoError {
    /// The file cannot be read: missing, not a regular file, or over [`MAX_LOGO_BYTES`].
    #[error("logo {}: {source}", path.display())]
    Read {
        /// The logo file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file is not a usable image.
    #[error("logo {}: {source}", path.display())]
    Image {
        /// The logo file.
        path: PathBuf,
        /// What is wrong with it.
        source: ImageError,
    },
}

/// Why logo bytes are not a usable image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Neither PNG nor JPEG.
    #[error("not a PNG or JPEG file")]
    Format,
    /// Empty, or wider or higher than [`MAX_LOGO_PIXELS`].
    #[error("{width} × {height} pixels; width and height must be 1 to {MAX_LOGO_PIXELS}")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The image does not decode.
    #[error("unreadable: {0}")]
    Decode(#[from] image::ImageError),
}

/// Reads, checks and prepares a logo file: a regular file of at most [`MAX_LOGO_BYTES`].
pub fn load_logo(path: &Path) -> Result<image::DynamicImage, LogoError> {
    let bytes = crate::files::read_limited(path, MAX_LOGO_BYTES).map_err(|source| LogoError::Read { path: path.to_owned(), source })?;
    decode_logo(&bytes).map_err(|source| LogoError::Image { path: path.to_owned(), source })
}

/// Checks and prepares logo bytes: PNG or JPEG, size-checked before decoding, alpha flattened
/// onto white, scaled down to fit [`LOGO_MAX_W`] × [`LOGO_MAX_H`].
pub fn decode_logo(bytes: &[u8]) -> Result<image::DynamicImage, ImageError> {
    let format = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        image::ImageFormat::Png
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        image::ImageFormat::Jpeg
    } else {
        return Err(ImageError::Format);
    };
    let reader = image::io::Reader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions()?;
    if w == 0 || h == 0 || w > MAX_LOGO_PIXELS || h > MAX_LOGO_PIXELS {
        return Err(ImageError::Size { width: w, height: h });
    }
    let img = image::load_from_memory_with_format(bytes, format)?;
    let rgba = img.to_rgba8();
    let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
    for (x, y, p) in rgba.enumerate_pixels() {
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        rgb.put_pixel(x, y, image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])]));
    }
    let img = image::DynamicImage::ImageRgb8(rgb);
    Ok(if w > LOGO_MAX_W || h > LOGO_MAX_H { img.resize(LOGO_MAX_W, LOGO_MAX_H, image::imageops::FilterType::Triangle) } else { img })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use image::GenericImageView as _;

    /// A PNG of `w` × `h` pixels with alpha.
    pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
        let img =
            image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x % 256) as u8, (y % 256) as u8, 200, if x < w / 2 { 255 } else { 0 }]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgba8(img).write_to(&mut out, image::ImageOutputFormat::Png).unwrap();
        out
    }

    #[test]
    fn colours_parse_and_refuse_bad_input() {
        assert_eq!("#1E293b".parse::<Colour>(), Ok(Colour(30, 41, 59)));
        for bad in ["1e293b", "#12345", "#12345g", "red", "#1e293b00"] {
            assert!(bad.parse::<Colour>().is_err(), "{bad}");
        }
        assert!(Colour::DEFAULT.is_dark() && !Colour(250, 250, 250).is_dark());
    }

    #[test]
    fn logos_are_checked_flattened_and_scaled() {
        let img = decode_logo(&png(1200, 300)).unwrap();
        assert_eq!((img.width(), img.height()), (LOGO_MAX_W, 120));
        assert!(!img.color().has_alpha());
        // Transparent pixels become white.
        let small = decode_logo(&png(10, 10)).unwrap().to_rgb8();
        assert_eq!(small.get_pixel(9, 0).0, [255, 255, 255]);
        assert!(decode_logo(b"GIF89a....").unwrap_err().to_string().contains("PNG or JPEG"));
        assert!(decode_logo(&png(5000, 1)).unwrap_err().to_string().contains("5000"));
        let mut broken = png(10, 10);
        broken.truncate(40);
        assert!(decode_logo(&broken).is_err());
    }

    #[test]
    fn excluded_tenants_get_the_default_theme() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.png");
        std::fs::write(&logo, png(40, 20)).unwrap();
        let cfg = BrandingConfig {
            use_branding: true,
            logo: Some(logo),
            cover_text: Some(CoverText("Managed by Example IT".into())),
            header_color: Colour(200, 0, 0),
            footer_color: Colour(0, 0, 200),
            exclude_tenants: vec![ampel_protocol::TenantId::new("plain").unwrap()],
        };
        let t = cfg.theme_for("acme").unwrap();
        assert_eq!((t.header, t.footer, t.logo.is_some()), (Colour(200, 0, 0), Colour(0, 0, 200), true));
        let plain = cfg.theme_for("plain").unwrap();
        assert_eq!((plain.header, plain.logo.is_some(), plain.cover_text), (Colour::DEFAULT, false, None));
        // A logo gone since the config was checked: the report goes out without it.
        std::fs::remove_file(cfg.logo.as_ref().unwrap()).unwrap();
        let (t, why) = cfg.theme_or_without_logo("acme");
        assert_eq!((t.header, t.logo.is_some()), (Colour(200, 0, 0), false));
        assert!(why.unwrap().to_string().contains("logo.png"));
        let off = BrandingConfig { use_branding: false, ..cfg };
        assert!(off.theme_for("acme").unwrap().logo.is_none());
    }

    /// At render time the logo is read again, with the bound the config check used: a logo
    /// replaced by `/dev/zero` (or a file grown past the limit) is refused before it is read
    /// (before: `/dev/zero` has length 0, passed the size check and was read without end), and
    /// the report goes out without it.
    #[test]
    fn a_logo_replaced_since_the_check_is_read_with_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.png");
        let mut bytes = png(40, 20);
        bytes.resize(MAX_LOGO_BYTES as usize + 1, 0);
        std::fs::write(&big, bytes).unwrap();
        for path in [big, PathBuf::from("/dev/zero")] {
            let cfg = BrandingConfig { use_branding: true, logo: Some(path.clone()), ..BrandingConfig::default() };
            let (theme, why) = cfg.theme_or_without_logo("acme");
            assert!(theme.logo.is_none());
            let why = why.unwrap();
            assert!(matches!(why, LogoError::Read { .. }), "{why}");
            assert!(why.to_string().contains(&path.display().to_string()), "{why}");
        }
    }
}
