//! The column names of the exports people bring to a Graph run: an Entra admin center
//! "Download users" file and a Microsoft 365 admin center user export. Their names for the
//! fields Graph can change through bulkpatch (`jobTitle` is the tool's `job_title` already;
//! `telephoneNumber`, `Title`, `Office` are aliases) are read; their other columns are known
//! as "not changeable through Microsoft Graph" (here: not a field bulkpatch sends through
//! Graph) rather than taken for typos. Uses nothing else of the crate.

/// Export names (normalised) for the columns a run reads: (export name, the tool's column).
const ALIASES: &[(&str, &str)] = &[
    ("id", "userid"),
    ("objectid", "userid"),
    ("givenname", "firstname"),
    ("surname", "lastname"),
    // Already the tool's own names once normalised; listed to say the export is read.
    ("userprincipalname", "userprincipalname"),
    ("displayname", "displayname"),
    ("usagelocation", "usagelocation"),
    // Entra's and the Microsoft 365 admin center's names for Graph's own fields.
    ("telephonenumber", "businessphones"),
    ("businessphone", "businessphones"),
    ("officephone", "businessphones"),
    ("title", "jobtitle"),
    ("office", "officelocation"),
    ("physicaldeliveryofficename", "officelocation"),
    ("mobile", "mobilephone"),
    ("stateorprovince", "state"),
    ("countryorregion", "country"),
    ("ziporpostalcode", "postalcode"),
];

/// The user properties of those exports that bulkpatch does not change through Graph
/// (normalised): read-only ones (`createdDateTime`) and ones outside its fields (`mail`).
const UNCHANGEABLE: &[&str] = &[
    "mail",
    "usertype",
    "alternateemailaddress",
    "agegroup",
    "consentprovidedforminor",
    "legalagegroupclassification",
    "creationtype",
    "directorysynced",
    "invitationstate",
    "identityissuer",
    "createddatetime",
    "employeetype",
    "faxnumber",
    "proxyaddresses",
    "othermails",
    "mailnickname",
    "onpremisessamaccountname",
    "onpremisesimmutableid",
    "lastsignindatetime",
    "manager",
];

/// The tool's column an export's header name means.
pub fn alias(normalized: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(name, _)| *name == normalized)
        .map(|(_, column)| *column)
}

/// Whether the header name is a user property bulkpatch does not change through Graph.
pub fn unchangeable(normalized: &str) -> bool {
    UNCHANGEABLE.contains(&normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::graph::fields::{property, FIELDS};

    #[test]
    fn an_entra_export_s_29_columns_are_read_or_known_as_unchangeable() {
        let export = "id,userPrincipalName,displayName,surname,mail,givenName,userType,jobTitle,department,accountEnabled,usageLocation,streetAddress,state,country,officeLocation,city,postalCode,telephoneNumber,mobilePhone,alternateEmailAddress,ageGroup,consentProvidedForMinor,legalAgeGroupClassification,companyName,creationType,directorySynced,invitationState,identityIssuer,createdDateTime";
        let graph_own: Vec<String> = FIELDS.iter().map(|f| property(*f).to_lowercase()).collect();
        let names: Vec<String> = export.split(',').map(|n| n.to_lowercase()).collect();
        assert_eq!(names.len(), 29);
        for n in &names {
            let read = alias(n).is_some() || graph_own.contains(n);
            assert!(
                read != unchangeable(n),
                "{n} is either read or unchangeable"
            );
        }
        // Graph changes what Partner Center cannot: these are fields here, not "unchangeable".
        for n in [
            "jobtitle",
            "department",
            "accountenabled",
            "city",
            "companyname",
        ] {
            assert!(!unchangeable(n) && graph_own.iter().any(|g| g == n), "{n}");
        }
        assert_eq!(alias("telephonenumber"), Some("businessphones"));
    }
}
