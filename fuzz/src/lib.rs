//! What the fuzz targets share: the shipped mappings, and the hub's
//! intake step ([`hub::intake::prepare`]: mapping, fingerprint, or a
//! quarantine reason) that every record goes through.

use std::sync::{Arc, OnceLock};

use connectors::RawRecord;
use hub::intake::{IntakeSettings, prepare};
use hub::mapping::{CanonicalMapper, Mappings};

/// The four agencies' shipped mappings and the canonical one (`canon`).
pub fn mappings() -> &'static Mappings {
    static MAPPINGS: OnceLock<Mappings> = OnceLock::new();
    MAPPINGS.get_or_init(|| {
        let mut m = Mappings::new();
        for agency in hub::mapping::shipped::AGENCIES {
            let mapper = hub::mapping::shipped::mapper(agency).expect("shipped").expect("the shipped mapping is valid");
            m.insert(*agency, Arc::new(mapper));
        }
        m.insert("canon", Arc::new(CanonicalMapper));
        m
    })
}

/// Runs a record through intake and checks what must hold for any input:
/// it is stored or quarantined with a reason a person can read.
pub fn intake(record: &RawRecord) {
    let item = prepare(record, mappings(), &IntakeSettings::default());
    if let Err(reason) = &item.change {
        assert!(!reason.trim().is_empty(), "a quarantined record has a reason");
    }
}

/// The record as an agency would send it, undeclared and declared GB18030
/// (the petition bureau's older systems).
pub fn map_both_ways(system: &str, content_type: connectors::ContentType, data: &[u8]) {
    intake(&RawRecord::new(system, content_type, data.to_vec()));
    intake(&RawRecord::new(system, content_type, data.to_vec()).with_encoding("gb18030"));
}
