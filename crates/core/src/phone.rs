//! Phone numbers in E.164 (`+8613800000001`). A number written without a country code takes
//! the default one (86, mainland China), so a contact's `138 0000 0001` is accepted and
//! stored normalised; anything else is refused when it is submitted, never dropped when an
//! SMS is sent.

/// Mainland China: the default country code of a number written without one.
pub const DEFAULT_COUNTRY_CODE: &str = "86";

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "a phone number may hold only digits, spaces, dashes, dots, parentheses and a leading +"
    )]
    Characters,
    #[error("an E.164 number has 8 to 15 digits after the +, the first not 0")]
    Length,
    #[error("a mainland mobile number without a country code has 11 digits starting with 1")]
    Mobile,
}

/// The number in E.164, taking `default_cc` when it has no `+country` prefix (a leading
/// `00` counts as `+`).
pub fn normalize(raw: &str, default_cc: &str) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    let (international, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => match trimmed.strip_prefix("00") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        },
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(PhoneError::Characters),
        }
    }
    let full = if international {
        digits
    } else if default_cc == DEFAULT_COUNTRY_CODE {
        if digits.len() != 11 || !digits.starts_with('1') {
            return Err(PhoneError::Mobile);
        }
        format!("{default_cc}{digits}")
    } else {
        format!("{default_cc}{}", digits.trim_start_matches('0'))
    };
    if !(8..=15).contains(&full.len()) || full.starts_with('0') {
        return Err(PhoneError::Length);
    }
    Ok(format!("+{full}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_numbers_take_the_default_country_code() {
        assert_eq!(
            normalize("138 0000 0001", "86").as_deref(),
            Ok("+8613800000001")
        );
        assert_eq!(
            normalize("+86 138-0000-0001", "86").as_deref(),
            Ok("+8613800000001")
        );
        assert_eq!(
            normalize("0044 20 7946 0018", "86").as_deref(),
            Ok("+442079460018")
        );
    }

    #[test]
    fn malformed_numbers_are_refused_with_the_rule() {
        assert_eq!(normalize("1380000000", "86"), Err(PhoneError::Mobile));
        assert_eq!(normalize("23800000001", "86"), Err(PhoneError::Mobile));
        assert_eq!(normalize("+86 138x0000", "86"), Err(PhoneError::Characters));
        assert_eq!(normalize("+1234", "86"), Err(PhoneError::Length));
        assert_eq!(normalize("+0123456789", "86"), Err(PhoneError::Length));
        assert_eq!(normalize("", "86"), Err(PhoneError::Mobile));
    }
}
