//! Country codes an MRZ may carry: ISO 3166-1 alpha-3 and the codes ICAO 9303 part 3 adds.

/// ISO 3166-1 alpha-3.
const ISO: &str = "ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD BGR \
BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG COK COL COM CPV CRI \
CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY \
GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR \
ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA \
MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL \
NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM \
SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR \
TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE";

/// ICAO 9303 part 3 codes beyond ISO 3166-1: Germany's `D`, the British nationality classes, UN and EU issuers,
/// Kosovo, the specimen state `UTO`, and the stateless/refugee/unspecified codes.
const ICAO: &str = "D GBD GBN GBO GBP GBS EUE UNA UNK UNO XBA XIM XCC XCE XCO XEC XES XMP XOM XPO RKS UTO XXA XXB \
XXC XXX";

/// Whether a code (as written in the MRZ, `<`-padded to three characters) is known.
pub fn is_known(code: &str) -> bool {
    let code = code.trim_end_matches('<');
    !code.is_empty()
        && ISO
            .split_whitespace()
            .chain(ICAO.split_whitespace())
            .any(|c| c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_iso_and_icao_codes() {
        for c in [
            "DEU", "D<<", "UTO", "XXA", "GBR", "RKS", "FRA", "USA", "EUE",
        ] {
            assert!(is_known(c), "{c}");
        }
        for c in ["XYZ", "<<<", "0BR", "DE<"] {
            assert!(!is_known(c), "{c}");
        }
        assert_eq!(ISO.split_whitespace().count(), 249);
    }
}
