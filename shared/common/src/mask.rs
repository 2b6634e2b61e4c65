//! Masking of phone numbers for info-level logs.

/// Keeps the leading `+` and country digit(s) and the last two digits: `+1******4567` style
/// masking loses too little, so only the last two digits stay visible.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep_head = if chars.first() == Some(&'+') { 2 } else { 1 };
    let keep_tail = 2;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_head || i >= chars.len() - keep_tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mask_number;

    #[test]
    fn e164_keeps_country_and_last_two_digits() {
        assert_eq!(mask_number("+18005551234"), "+1********34");
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask_number("1234"), "****");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn masked_value_never_contains_the_middle_digits() {
        let masked = mask_number("+442071234567");
        assert!(!masked.contains("2071234"));
        assert_eq!(masked.len(), "+442071234567".len());
    }
}
