//! What the fuzz targets share: reading one input as a sequence of messages.

/// Splits `data` into chunks, each a little-endian `u16` length and that many bytes
/// (the last one cut short where the input ends), as a stream of messages.
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = take_len(data)?;
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some(frame)
    })
}

/// The `u16` length at the start of `data`, and what follows it.
pub fn take_len(data: &[u8]) -> Option<(usize, &[u8])> {
    match data {
        [a, b, rest @ ..] => Some((u16::from_le_bytes([*a, *b]) as usize, rest)),
        _ => None,
    }
}
